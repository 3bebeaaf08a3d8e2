package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// AuditEvent is one IBM Cloud Activity Tracker event, emitted for every call to an
// operation of openapi.yaml, allowed or denied, named by the operation's x-ibm-events.
type AuditEvent struct {
	Action        string         `json:"action"`
	Outcome       string         `json:"outcome"` // success or failure
	Reason        AuditReason    `json:"reason"`
	Severity      string         `json:"severity"` // normal, warning or critical
	Initiator     AuditInitiator `json:"initiator"`
	Target        AuditTarget    `json:"target"`
	Observer      AuditObserver  `json:"observer"`
	EventTime     string         `json:"eventTime"`
	CorrelationID string         `json:"correlationId"`
	Message       string         `json:"message"`
	DataEvent     bool           `json:"dataEvent"`
}

// AuditReason says how the call ended.
type AuditReason struct {
	ReasonCode       int    `json:"reasonCode"`
	ReasonType       string `json:"reasonType"`
	ReasonForFailure string `json:"reasonForFailure,omitempty"`
}

// AuditInitiator is who called, from where.
type AuditInitiator struct {
	ID         string          `json:"id"`
	TypeURI    string          `json:"typeURI"`
	Name       string          `json:"name,omitempty"`
	Host       AuditHost       `json:"host"`
	Credential AuditCredential `json:"credential"`
}

// AuditHost is the caller's address and user agent.
type AuditHost struct {
	Address string `json:"address"`
	Agent   string `json:"agent"`
}

// AuditCredential is the kind of credential used, never the credential.
type AuditCredential struct {
	Type string `json:"type"`
}

// AuditTarget is what the call acted on.
type AuditTarget struct {
	ID      string `json:"id"`
	TypeURI string `json:"typeURI"`
}

// AuditObserver names the emitter.
type AuditObserver struct {
	Name string `json:"name"`
}

// auditor writes events as JSON lines to a sink and keeps them in the store, in batches
// from a background goroutine so a request never waits for the database to list them.
type auditor struct {
	log   *slog.Logger
	mu    sync.Mutex
	sink  io.Writer
	store domain.Store
	keep  int // how many events the store keeps; 0: all
	kept  int // events written since the last prune
	queue chan []byte
	done  chan struct{}
	flush chan chan struct{}
}

func newAuditor(log *slog.Logger, sink io.Writer, store domain.Store, keep int) *auditor {
	a := &auditor{log: log, sink: sink, store: store, keep: keep, queue: make(chan []byte, 4096), done: make(chan struct{}), flush: make(chan chan struct{})}
	go a.run()
	return a
}

func (a *auditor) emit(ev *AuditEvent) {
	line := ev.AppendJSON(make([]byte, 0, 1024))
	if a.sink != nil {
		a.mu.Lock()
		line = append(line, '\n')
		_, err := a.sink.Write(line)
		line = line[:len(line)-1]
		a.mu.Unlock()
		if err != nil {
			a.log.Error("audit sink write failed", "error", err)
		}
	}
	a.queue <- line
}

func (a *auditor) run() {
	defer close(a.done)
	var (
		batch [][]byte // events taken from the queue, not yet given to the store
		// pending is a batch the store failed to keep, tried again as it was, under its id
		// (so that a try whose commit did happen keeps nothing more), every backoff.
		pending   [][]byte
		pendingID string
		backoff   time.Duration
		retry     <-chan time.Time
		dropped   int
	)
	// try gives the pending batch to the store; false if the store failed (again).
	try := func() bool {
		if err := a.store.AppendAudit(context.Background(), pendingID, pending); err != nil {
			if backoff == 0 {
				a.log.Warn("audit events not kept yet; trying again", "count", len(pending), "error", err)
			}
			backoff = min(max(2*backoff, auditRetryMin), auditRetryMax)
			retry = time.After(backoff)
			return false
		}
		if backoff > 0 {
			a.log.Info("audit events kept after trying again", "count", len(pending))
		}
		if dropped > 0 {
			a.log.Error("audit events not kept: held no more while the store failed", "count", dropped)
			dropped = 0
		}
		a.kept += len(pending)
		pending, backoff, retry = nil, 0, nil
		// Prune once a tenth of the limit has come in, so the database stays bounded
		// (the JSON-lines sink keeps everything).
		if a.keep > 0 && a.kept >= max(a.keep/10, 1) {
			if err := a.store.PruneAudit(context.Background(), a.keep); err != nil {
				a.log.Error("audit events not pruned", "error", err)
			}
			a.kept = 0
		}
		return true
	}
	// write gives the store what was taken, auditBatch events at a time, unless a batch is
	// pending: then what comes is held until that one is kept.
	write := func() {
		for pending == nil && len(batch) > 0 {
			n := min(len(batch), auditBatch)
			pending, pendingID = batch[:n:n], newBatchID()
			if batch = batch[n:]; len(batch) == 0 {
				batch = nil
			}
			try()
		}
	}
	// hold takes an event from the queue, unless auditHeld are held already.
	hold := func(r []byte) {
		if len(batch)+len(pending) >= auditHeld {
			dropped++
			return
		}
		batch = append(batch, r)
	}
	// take holds whatever else is queued, without waiting; if the queue has closed, the
	// loop's next turn keeps what is held.
	take := func() {
		for {
			select {
			case r, ok := <-a.queue:
				if !ok {
					return
				}
				hold(r)
			default:
				return
			}
		}
	}
	// Events wait up to auditLinger to be written together: one transaction (one fsync)
	// for many events rather than one for each.
	var timer *time.Timer
	var due <-chan time.Time
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
		}
		due = nil
	}
	for {
		select {
		case r, ok := <-a.queue:
			if !ok {
				// The queue closed: keep the pending batch and what is held, with a few
				// more tries a backoff apart, and log what could not be kept.
				for i := 0; i < auditFinalTries && (pending != nil || len(batch) > 0); i++ {
					if i > 0 {
						time.Sleep(auditRetryMin << i)
					}
					if pending == nil || try() {
						write()
					}
				}
				if n := len(pending) + len(batch) + dropped; n > 0 {
					a.log.Error("audit events not kept", "count", n)
				}
				return
			}
			hold(r)
			if len(batch) >= auditBatch {
				stopTimer()
				write()
			} else if due == nil {
				timer = time.NewTimer(auditLinger)
				due = timer.C
			}
		case <-due:
			due = nil
			write()
		case <-retry:
			retry = nil
			if try() {
				write()
			}
		case ack := <-a.flush:
			// A flush tries a pending batch at once; if the store still fails, it answers
			// with the events held.
			stopTimer()
			take()
			if pending == nil || try() {
				write()
			}
			close(ack)
		}
	}
}

// newBatchID names a batch of audit events (domain.Store's AppendAudit).
func newBatchID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

const (
	// auditBatch is the most events given to the store in one append.
	auditBatch = 512
	// A batch the store failed to keep is tried again after auditRetryMin, doubling up to
	// auditRetryMax between tries, and auditFinalTries times as the server stops; auditHeld
	// events at most are held meanwhile (about 5 MiB), and those beyond are dropped, with
	// an error logged once the store keeps events again.
	auditRetryMin   = 50 * time.Millisecond
	auditRetryMax   = 2 * time.Second
	auditFinalTries = 5
	auditHeld       = 10000
)

// auditLinger is how long an audit event may wait to be kept with others. The JSON-lines
// sink gets each event at once; at most this much of the kept list is lost in a crash.
const auditLinger = 20 * time.Millisecond

// Flush waits until every event emitted so far is kept in the store.
func (a *auditor) Flush() {
	ack := make(chan struct{})
	select {
	case a.flush <- ack:
		<-ack
	case <-a.done:
	}
}

// Close keeps what is queued and stops the writer.
func (a *auditor) Close() {
	close(a.queue)
	<-a.done
}

const auditTimeLayout = "2006-01-02T15:04:05.000-0700"

// audit emits exactly one event per call to an operation, after the answer is decided.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err != nil {
			s.writeError(c, err)
		}
		rs := stateOf(c)
		if op := rs.op(); op == nil || len(op.AuditEvents) == 0 {
			return nil
		}
		s.emitAudit(c, rs)
		return nil
	}
}

func (s *Server) emitAudit(c echo.Context, rs *reqState) {
	op := rs.op()
	status := answeredStatus(c, rs)
	r := c.Request()
	at := s.now()
	ev := &AuditEvent{
		Outcome:       "success",
		Reason:        AuditReason{ReasonCode: status, ReasonType: http.StatusText(status)},
		Severity:      "normal",
		Observer:      AuditObserver{Name: "ActivityTracker"},
		EventTime:     at.UTC().Format(auditTimeLayout),
		CorrelationID: rs.trace,
		DataEvent:     true,
		Initiator: AuditInitiator{
			ID: "unknown", TypeURI: "service/security/account/user",
			Host:       AuditHost{Address: rs.remote, Agent: r.UserAgent()},
			Credential: AuditCredential{Type: credentialToken},
		},
	}
	if len(op.AuditEvents) > 0 {
		ev.Action = op.AuditEvents[0]
	}
	switch {
	case r.Header.Get(echo.HeaderAuthorization) == "":
		ev.Initiator.Credential.Type = "none"
	case rs.credential != "":
		ev.Initiator.Credential.Type = rs.credential
	}
	if p := rs.principal; p != nil {
		ev.Initiator.ID, ev.Initiator.Name = p.ID, p.Name
		if p.Type == domain.PrincipalServiceID {
			ev.Initiator.TypeURI = "service/security/account/serviceid"
		}
	}
	target := rs.resource.String()
	if rs.resource.AccountID == "" {
		// Refused before the target was parsed: name what the request asked for.
		target = truncate(r.Header.Get(headerServiceCRN), 256)
		if id := c.Param("id"); id != "" {
			target = "a/" + truncate(id, 64)
		}
	}
	ev.Target = AuditTarget{ID: target, TypeURI: "quantum-computing/instance"}
	switch {
	case len(op.IAMActions) == 0: // an IBM Cloud lookup: what it read
		target = r.URL.Path
		ev.Target = AuditTarget{ID: target, TypeURI: op.AuditEvents[0]}
	case rs.resource.InstanceCRN == "" && c.Param("id") != "":
		ev.Target.TypeURI = "quantum-computing/account"
	}
	if op.Method != http.MethodGet {
		ev.Severity = "warning"
	}
	if rs.dropped {
		ev.Reason.ReasonType = "Connection dropped"
	}
	if status >= 400 || rs.dropped {
		ev.Outcome = "failure"
		ev.Reason.ReasonForFailure = rs.errCode
		if rs.fault != nil && (rs.fault.Status != 0 || rs.dropped) {
			ev.Reason.ReasonForFailure = reasonInjected + ": fault rule " + rs.fault.ID + " of the control API"
		}
		ev.Severity = "warning"
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			ev.Severity = "critical"
		}
	}
	ev.Message = "Qiskit Runtime: " + op.Operation.Summary + " " + target
	if ev.Outcome == "failure" {
		ev.Message += " -failure"
	}
	s.auditor.emit(ev)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// AppendJSON appends the event as JSON, exactly as encoding/json writes it (field order,
// omitted empty fields) but without reflection: one event is written per API call.
func (ev *AuditEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"action":`...)
	b = appendJSONString(b, ev.Action)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, ev.Outcome)
	b = append(b, `,"reason":{"reasonCode":`...)
	b = strconv.AppendInt(b, int64(ev.Reason.ReasonCode), 10)
	b = append(b, `,"reasonType":`...)
	b = appendJSONString(b, ev.Reason.ReasonType)
	if ev.Reason.ReasonForFailure != "" {
		b = append(b, `,"reasonForFailure":`...)
		b = appendJSONString(b, ev.Reason.ReasonForFailure)
	}
	b = append(b, `},"severity":`...)
	b = appendJSONString(b, ev.Severity)
	b = append(b, `,"initiator":{"id":`...)
	b = appendJSONString(b, ev.Initiator.ID)
	b = append(b, `,"typeURI":`...)
	b = appendJSONString(b, ev.Initiator.TypeURI)
	if ev.Initiator.Name != "" {
		b = append(b, `,"name":`...)
		b = appendJSONString(b, ev.Initiator.Name)
	}
	b = append(b, `,"host":{"address":`...)
	b = appendJSONString(b, ev.Initiator.Host.Address)
	b = append(b, `,"agent":`...)
	b = appendJSONString(b, ev.Initiator.Host.Agent)
	b = append(b, `},"credential":{"type":`...)
	b = appendJSONString(b, ev.Initiator.Credential.Type)
	b = append(b, `}},"target":{"id":`...)
	b = appendJSONString(b, ev.Target.ID)
	b = append(b, `,"typeURI":`...)
	b = appendJSONString(b, ev.Target.TypeURI)
	b = append(b, `},"observer":{"name":`...)
	b = appendJSONString(b, ev.Observer.Name)
	b = append(b, `},"eventTime":`...)
	b = appendJSONString(b, ev.EventTime)
	b = append(b, `,"correlationId":`...)
	b = appendJSONString(b, ev.CorrelationID)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, ev.Message)
	b = append(b, `,"dataEvent":`...)
	b = strconv.AppendBool(b, ev.DataEvent)
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does: ", \\ and control characters escaped,
// <, > and & as \u003c, \u003e, \u0026, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
