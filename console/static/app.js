// The console's entry: sign-in, sign-out, and the two views.
import { signIn, signOut, setAdmin, APIError } from './api.js';
import { $ } from './dom.js';
import { showUser } from './user.js';
import { showAdmin, stopAdmin } from './admin.js';

function fail(e) {
  if (!(e instanceof APIError)) throw e;
  $('sign-in-error').textContent = `${e.status}: ${e.message}`;
}

$('key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('apikey');
  const key = input.value;
  input.value = ''; // the key is not kept, even in the field
  $('sign-in-error').textContent = '';
  try {
    const claims = await signIn(key);
    $('who').textContent = `Signed in as ${claims.iam_id}, account ${claims.account?.bss ?? ''}`;
    $('sign-out').hidden = false;
    $('user-view').hidden = false;
    await showUser(claims);
  } catch (e) {
    fail(e);
  }
});

$('admin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('admin-token');
  setAdmin(input.value);
  input.value = '';
  $('sign-in-error').textContent = '';
  try {
    await showAdmin();
    $('admin-view').hidden = false;
    $('sign-out').hidden = false;
  } catch (e) {
    setAdmin(null);
    fail(e);
  }
});

$('sign-out').addEventListener('click', () => {
  signOut();
  setAdmin(null);
  stopAdmin();
  $('who').textContent = '';
  $('user-view').hidden = true;
  $('admin-view').hidden = true;
  $('instances').replaceChildren();
  $('plans').replaceChildren();
  $('sign-out').hidden = true;
  $('apikey').focus();
});
