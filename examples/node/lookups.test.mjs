// IBM's own Node SDK (@ibm-cloud/platform-services, with ibm-cloud-sdk-core's IAM
// authenticator) against the reference server, pointed at it through the environment
// variables its services read (configure_service): GLOBAL_SEARCH_URL, GLOBAL_CATALOG_URL,
// RESOURCE_CONTROLLER_URL. Run with `node --test examples/node` (make test does), after
// building bin/qrserver (or with QRSERVER_BIN).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { IamAuthenticator } = require('ibm-cloud-sdk-core');
const GlobalSearchV2 = require('@ibm-cloud/platform-services/global-search/v2');
const GlobalCatalogV1 = require('@ibm-cloud/platform-services/global-catalog/v1');
const ResourceControllerV2 = require('@ibm-cloud/platform-services/resource-controller/v2');

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const adminKey = 'qrdemo-admin-key-0123456789abcdefghijklmnop';
const demoAccount = '8a3c1f7e2b4d4e6f9a0b1c2d3e4f5a6b';

let server;
let base;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const bin = process.env.QRSERVER_BIN || path.join(repo, 'bin', 'qrserver');
  server = spawn(bin, ['--addr', `127.0.0.1:${port}`, '--db', ':memory:', '--seed', path.join(repo, 'seed', 'demo.yaml'), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch { /* not up yet */ }
    if (i > 300) throw new Error(`qrserver did not start at ${base}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // What docs/lookups.md tells a user to export, taken from its block as written, with the
  // server's address moved to this one's.
  const doc = readFileSync(path.join(repo, 'docs', 'lookups.md'), 'utf8');
  const block = doc.split('<!-- readme-sdk-env')[1]?.split('```sh\n')[1]?.split('```')[0];
  assert.ok(block, 'docs/lookups.md has no readme-sdk-env block');
  const exported = [...block.matchAll(/^export (\w+)=(\S+)$/gm)];
  assert.deepEqual(exported.map((m) => m[1]).sort(), ['GLOBAL_CATALOG_URL', 'GLOBAL_SEARCH_URL', 'RESOURCE_CONTROLLER_URL']);
  for (const [, name, value] of exported) process.env[name] = value.replaceAll('http://127.0.0.1:8080', base);
  assert.ok(block.includes("new IamAuthenticator({ apikey, url: 'http://127.0.0.1:8080' })"), 'the block names the IAM URL for Node');
});

after(() => { server.kill(); });

// The SDK's IAM authenticator, exchanging the key at the reference server's IAM.
const authenticator = () => new IamAuthenticator({ apikey: adminKey, url: base });

test('GlobalSearchV2.search pages through every instance of the demo account', async () => {
  const search = GlobalSearchV2.newInstance({ authenticator: authenticator() });
  assert.equal(search.baseOptions.serviceUrl, `${base}/global-search`);
  const crns = [];
  let searchCursor;
  for (let pages = 0; pages < 10; pages++) {
    const { result } = await search.search({ query: 'service_name:quantum-computing', fields: ['crn', 'name', 'service_plan_unique_id', 'doc', 'tags'], searchCursor, limit: 1 });
    assert.ok(result.items.length <= 1);
    crns.push(...result.items.map((it) => it.crn));
    searchCursor = result.search_cursor;
    if (!searchCursor) break;
  }
  assert.deepEqual(crns.sort(), [
    `crn:v1:bluemix:public:quantum-computing:us-east:a/${demoAccount}:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::`,
    `crn:v1:bluemix:public:quantum-computing:us-east:a/${demoAccount}:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f::`,
  ]);
});

test('GlobalCatalogV1.getCatalogEntry answers each plan', async () => {
  const catalog = GlobalCatalogV1.newInstance({ authenticator: authenticator() });
  const want = { 'flex-plan-id-1': ['Flex', 'subscription'], 'plan-id-2': ['Pay-As-You-Go', 'paygo'], 'plan-id-3': ['Open', 'free'] };
  for (const [id, [name, pricing]] of Object.entries(want)) {
    const { result } = await catalog.getCatalogEntry({ id });
    assert.equal(result.overview_ui.en.display_name, name);
    assert.equal(result.metadata.pricing.type, pricing);
  }
  await assert.rejects(catalog.getCatalogEntry({ id: 'no-such-plan' }), (err) => err.status === 404);
});

test('ResourceControllerV2.listResourceInstances resolves a name to its CRN', async () => {
  const rc = ResourceControllerV2.newInstance({ authenticator: authenticator() });
  const { result } = await rc.listResourceInstances({ name: 'demo-open' });
  assert.equal(result.rows_count, 1);
  assert.equal(result.resources[0].crn, `crn:v1:bluemix:public:quantum-computing:us-east:a/${demoAccount}:0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f::`);
});
