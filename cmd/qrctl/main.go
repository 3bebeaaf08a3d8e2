// Command qrctl is a command line for the Qiskit Runtime Instances and Accounts API, on
// IBM Cloud or on the reference server (cmd/qrserver), built on package client.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
