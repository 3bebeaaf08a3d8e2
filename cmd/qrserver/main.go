// Command qrserver is the reference server of the Qiskit Runtime Instances and Accounts
// API: point a client at it instead of IBM Cloud. Flags only; the work is in server/.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if code := exitCode(err); code != 0 {
			fmt.Fprintln(os.Stderr, "qrserver:", err)
			os.Exit(code)
		}
	}
}
