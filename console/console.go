// Package console is the reference server's web console, at /console/: HTML, CSS and
// JavaScript modules with no framework and no build step, embedded in the binary. In the
// browser it calls the same REST API, IAM, lookups and control API that clients call, with
// the same credentials, kept in the page's memory only.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// CSP is the console's Content-Security-Policy: its own scripts, styles and origin only;
// no inline script or style, no plugin, no form posted anywhere, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Files are the console's files, by name (index.html, app.js, …).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory is there by construction
	}
	return sub
}

// Handler serves the console's files under the path it is given (strip the prefix
// first), each with the policy and headers that keep a credential on the page.
func Handler() http.Handler {
	files := http.FileServerFS(Files())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		files.ServeHTTP(w, r)
	})
}
