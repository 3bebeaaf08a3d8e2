// Package client is a Go client of the IBM Qiskit Runtime REST API's Instances and
// Accounts operations, for IBM Cloud and for the reference server (cmd/qrserver) alike.
//
// It wraps the client generated from openapi.yaml: requests carry Service-CRN and
// IBM-API-Version, authentication goes through IBM's Go SDK core (an API key exchanged at
// IAM, a fixed bearer token, or any core.Authenticator), failed calls are retried with
// backoff where that is safe, and every non-2xx answer is a *Error that errors.Is matches
// against ErrNotFound, ErrUnauthorized and the like.
//
// The program a user writes:
//
//	c, err := client.New(
//		client.WithAPIKey(os.Getenv("QISKIT_IBM_TOKEN")),
//		client.WithCRN(os.Getenv("QISKIT_IBM_INSTANCE")),
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	usage, err := c.Usage(context.Background())
//	if err != nil {
//		log.Fatal(err)
//	}
//	remaining, _ := usage.Remaining()
//	fmt.Printf("%s: %.0f of %.0f seconds used, %.0f left\n", usage.PlanId, usage.UsageConsumedSeconds, *usage.UsageLimitSeconds, remaining)
//
// FromEnv reads the same settings from QISKIT_IBM_TOKEN (API key), QISKIT_IBM_INSTANCE
// (CRN), QISKIT_IBM_URL and IBM_IAM_URL.
package client
