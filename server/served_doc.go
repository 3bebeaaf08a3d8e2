package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"sigs.k8s.io/yaml"
)

// servedDocs serves openapi.yaml as a reader of /docs/ needs it: this server's own origin
// first among the servers, so that "Try it out" calls this server and not IBM Cloud, and a
// note at the top of the page on how to get a token. The origin is --public-url, else the
// request's host. Each origin's document is made once.
type servedDocs struct {
	doc       map[string]any // the embedded document, as JSON values
	publicURL string
	mu        sync.Mutex
	byOrigin  map[string]*servedDoc
}

type servedDoc struct{ json, yaml []byte }

// maxOrigins bounds the documents kept, one per origin asked for.
const maxOrigins = 64

func newServedDocs(specJSON []byte, publicURL string) (*servedDocs, error) {
	var doc map[string]any
	if err := json.Unmarshal(specJSON, &doc); err != nil {
		return nil, err
	}
	return &servedDocs{doc: doc, publicURL: strings.TrimSuffix(publicURL, "/"), byOrigin: map[string]*servedDoc{}}, nil
}

// origin is where the reader reached this server.
func (d *servedDocs) origin(r *http.Request) string {
	if d.publicURL != "" {
		return d.publicURL
	}
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			host = "127.0.0.1"
		}
	}
	u := url.URL{Scheme: "http", Host: host}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u.String()
}

func (d *servedDocs) get(r *http.Request) (*servedDoc, error) {
	origin := d.origin(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	if sd := d.byOrigin[origin]; sd != nil {
		return sd, nil
	}
	doc := maps.Clone(d.doc)
	servers := []any{map[string]any{"url": origin + basePath, "description": "This reference server (qrserver), where these pages are served."}}
	old, _ := d.doc["servers"].([]any)
	for _, s := range old {
		if m, ok := s.(map[string]any); ok {
			if u, _ := m["url"].(string); strings.HasPrefix(u, "http://127.0.0.1:") {
				continue // the README's local entry: this server is listed first already
			}
		}
		servers = append(servers, s)
	}
	doc["servers"] = servers
	info := maps.Clone(d.doc["info"].(map[string]any))
	desc, _ := info["description"].(string)
	info["description"] = fmt.Sprintf("**Trying it out here.** Get an access token from this server's emulated IAM: "+
		"`curl -X POST %s/identity/token -d grant_type=urn:ibm:params:oauth:grant-type:apikey -d apikey=<API key>` "+
		"(the demo seed's keys are printed by `make run`), then press **Authorize** and paste the `access_token` "+
		"(or send `Authorization: apikey <API key>`). Each instance operation also needs the `Service-CRN` header.\n\n%s", origin, desc)
	doc["info"] = info
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return nil, err
	}
	if len(d.byOrigin) >= maxOrigins {
		clear(d.byOrigin)
	}
	sd := &servedDoc{json: j, yaml: y}
	d.byOrigin[origin] = sd
	return sd, nil
}

func (d *servedDocs) serveJSON(c echo.Context) error {
	sd, err := d.get(c.Request())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sd.json)
}

func (d *servedDocs) serveYAML(c echo.Context) error {
	sd, err := d.get(c.Request())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/yaml", sd.yaml)
}
