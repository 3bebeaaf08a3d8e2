// Command baseline is the ceiling of this stack on this machine for make bench-load: bare
// echo, no middleware, answering the API's two GETs with fixed bytes (the answers qrserver
// gives for the same request, read from files).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	instance := flag.String("instance-body", "", "file with the bytes of GET /api/v1/instance")
	usage := flag.String("usage-body", "", "file with the bytes of GET /api/v1/instances/usage")
	flag.Parse()
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		return b
	}
	inst, use := read(*instance), read(*usage)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/api/v1/instance", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, inst) })
	e.GET("/api/v1/instances/usage", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, use) })
	if err := e.Start(*addr); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
