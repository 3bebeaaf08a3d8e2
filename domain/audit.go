package domain

import "bytes"

// AuditQuery asks a store for one page of its kept audit events, oldest first.
type AuditQuery struct {
	// After is a cursor, an AuditPage's Next: only events kept after that one. 0: from the
	// oldest kept (a cursor older than that, pruned since, starts there too).
	After int64
	// Limit is the most events the page holds; it must be positive.
	Limit int
	// Match keeps an event in the page; nil keeps every one. What an event means is the
	// server's: stores keep events as they got them and only call Match.
	Match func(event []byte) bool
}

// AuditPage is one page of audit events.
type AuditPage struct {
	Events [][]byte
	// Next, when the page is full, is the cursor of the next page (which may be empty);
	// 0 when the kept events ended before the page did.
	Next int64
	// Last is the number of the last kept event the page read past, matching or not, or
	// the query's After when there was none: as After, it reads only what is kept later
	// (a live tail).
	Last int64
}

// AuditBatch is how the stores keep audit events: the JSON lines one append wrote, and the
// number of its last event in the list (events are numbered 1, 2, … across batches).
type AuditBatch struct {
	LastSeq int64
	Events  []byte
}

// auditBatchesPerRead is how many batches PageAudit asks a store for at a time.
const auditBatchesPerRead = 32

// PageAudit is the paging every store shares. read returns up to n batches, oldest first,
// whose last event is after the given number; PageAudit walks them from the cursor on,
// keeps what Match keeps, and stops reading as soon as the page is full, so a page costs
// the batches it spans rather than every kept event.
func PageAudit(q AuditQuery, read func(after int64, n int) ([]AuditBatch, error)) (AuditPage, error) {
	page := AuditPage{Events: [][]byte{}, Last: q.After}
	if q.Limit <= 0 {
		return page, Errorf(EINVALID, "An audit page needs a positive limit, not %d.", q.Limit)
	}
	after := q.After
	for {
		batches, err := read(after, auditBatchesPerRead)
		if err != nil {
			return page, err
		}
		for _, b := range batches {
			lines := bytes.Split(b.Events, []byte{'\n'})
			first := b.LastSeq - int64(len(lines)) + 1
			for i, ev := range lines {
				seq := first + int64(i)
				if seq <= after {
					continue
				}
				page.Last = seq
				if q.Match != nil && !q.Match(ev) {
					continue
				}
				page.Events = append(page.Events, ev)
				if len(page.Events) == q.Limit {
					page.Next = seq
					return page, nil
				}
			}
		}
		if len(batches) < auditBatchesPerRead {
			return page, nil
		}
		after = batches[len(batches)-1].LastSeq
	}
}
