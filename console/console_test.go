package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qrapi/qrapi/console"
	"github.com/qrapi/qrapi/qrtest"
)

// The console's files carry no inline script or style, which its policy would refuse, and
// no handler in an attribute; the server sends them with the policy.
func TestNoInlineScriptOrStyle(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle\s*=|\son[a-z]+\s*=|javascript:`)
	err := fs.WalkDir(console.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := fs.ReadFile(console.Files(), path)
		if err != nil {
			return err
		}
		if m := inline.Find(b); m != nil {
			t.Errorf("%s has inline script or style: %q", path, m)
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(b, -1) {
			if !strings.Contains(string(tag), `src="`) {
				t.Errorf("%s: a script with no src: %s", path, tag)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := qrtest.NewServer(t)
	for _, path := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || csp != console.CSP || strings.Contains(csp, "unsafe-inline") || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, policy %q", path, resp.StatusCode, csp)
		}
	}
	resp, err := http.Get(srv.URL + "/console/nothing.js")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"code":"not_found"`) || !strings.Contains(string(b), "it is at /console/") {
		t.Errorf("an unknown console path: %d %s", resp.StatusCode, b)
	}
}

// The README shows the screenshots the browser test writes; they are there.
func TestReadmeScreenshots(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, png := range []string{"docs/console-user.png", "docs/console-admin.png"} {
		if !strings.Contains(string(readme), "("+png+")") {
			t.Errorf("the README does not show %s", png)
		}
		b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(png)))
		if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
			t.Errorf("%s is missing or not a PNG (TestConsoleInABrowser writes it): %v", png, err)
		}
	}
}
