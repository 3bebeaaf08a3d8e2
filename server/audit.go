package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/qrapi/qrapi/domain"
)

// AuditEvent is one IBM Cloud Activity Tracker event, emitted for every call to an
// operation of openapi.yaml, allowed or denied, named by the operation's x-audit-events.
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
	RequestData   map[string]any `json:"requestData,omitempty"`
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
	queue chan domain.AuditRecord
	done  chan struct{}
	flush chan chan struct{}
}

type batchAppender interface {
	AppendAuditBatch(ctx context.Context, evs []domain.AuditRecord) error
}

func newAuditor(log *slog.Logger, sink io.Writer, store domain.Store) *auditor {
	a := &auditor{log: log, sink: sink, store: store, queue: make(chan domain.AuditRecord, 4096), done: make(chan struct{}), flush: make(chan chan struct{})}
	go a.run()
	return a
}

func (a *auditor) emit(ev *AuditEvent, at time.Time, principalID, target string) {
	line, err := json.Marshal(ev)
	if err != nil {
		a.log.Error("audit event not encoded", "error", err)
		return
	}
	if a.sink != nil {
		a.mu.Lock()
		line = append(line, '\n')
		_, err = a.sink.Write(line)
		line = line[:len(line)-1]
		a.mu.Unlock()
		if err != nil {
			a.log.Error("audit sink write failed", "error", err)
		}
	}
	a.queue <- domain.AuditRecord{Time: at, Action: ev.Action, Outcome: ev.Outcome, InitiatorID: principalID, TargetCRN: target, CorrelationID: ev.CorrelationID, JSON: line}
}

func (a *auditor) run() {
	defer close(a.done)
	var batch []domain.AuditRecord
	write := func() {
		if len(batch) == 0 {
			return
		}
		var err error
		if ba, ok := a.store.(batchAppender); ok {
			err = ba.AppendAuditBatch(context.Background(), batch)
		} else {
			for _, r := range batch {
				if err = a.store.AppendAudit(context.Background(), r); err != nil {
					break
				}
			}
		}
		if err != nil {
			a.log.Error("audit events not kept", "count", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	// take adds whatever else is queued, without waiting; false once the queue is closed.
	take := func() bool {
		for len(batch) < 512 {
			select {
			case r, ok := <-a.queue:
				if !ok {
					return false
				}
				batch = append(batch, r)
			default:
				return true
			}
		}
		return true
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
				write()
				return
			}
			batch = append(batch, r)
			if len(batch) >= 512 {
				stopTimer()
				write()
			} else if due == nil {
				timer = time.NewTimer(auditLinger)
				due = timer.C
			}
		case <-due:
			due = nil
			write()
		case ack := <-a.flush:
			stopTimer()
			for take() && len(batch) >= 512 {
				write()
			}
			write()
			close(ack)
		}
	}
}

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
		if rs.op == nil || len(rs.op.AuditEvents) == 0 {
			return nil
		}
		s.emitAudit(c, rs)
		return nil
	}
}

func (s *Server) emitAudit(c echo.Context, rs *reqState) {
	status := c.Response().Status
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
			Host:       AuditHost{Address: c.RealIP(), Agent: r.UserAgent()},
			Credential: AuditCredential{Type: "token"},
		},
	}
	if len(rs.op.AuditEvents) > 0 {
		ev.Action = rs.op.AuditEvents[0]
	}
	if r.Header.Get(echo.HeaderAuthorization) == "" {
		ev.Initiator.Credential.Type = "none"
	}
	principalID := ""
	if p := rs.principal; p != nil {
		principalID = p.ID
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
	if rs.resource.InstanceCRN == "" && c.Param("id") != "" {
		ev.Target.TypeURI = "quantum-computing/account"
	}
	if rs.op.Method != http.MethodGet {
		ev.Severity = "warning"
	}
	if status >= 400 {
		ev.Outcome = "failure"
		ev.Reason.ReasonForFailure = rs.errCode
		ev.Severity = "warning"
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			ev.Severity = "critical"
		}
	}
	ev.Message = "Qiskit Runtime: " + rs.op.Operation.Summary + " " + target
	if ev.Outcome == "failure" {
		ev.Message += " -failure"
	}
	s.auditor.emit(ev, at, principalID, target)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
