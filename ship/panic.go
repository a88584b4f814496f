package ship

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// RecoverAndFlush is for a deferred call at the top of main (or of a
// goroutine):
//
//	defer s.RecoverAndFlush(2 * time.Second)
//
// On a panic it queues an Eliot "eliot:traceback" record (exception, reason,
// traceback), flushes the shipper for at most timeout and panics again with
// the same value. Without a panic it does nothing. The record goes in even
// when the queue is full (the oldest records make room).
func (s *Shipper) RecoverAndFlush(timeout time.Duration) {
	r := recover()
	if r == nil {
		return
	}
	stack := debug.Stack()
	if limit := s.maxRec / 2; len(stack) > limit {
		stack = stack[:limit] // keep the record under the size limit
	}
	s.enqueueForced(panicRecord(r, stack, time.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	_ = s.Flush(ctx)
	cancel()
	panic(r)
}

// panicRecord is the eliot:traceback message for a panic: a task of its own
// (task_level [1]) since the panicking context is not known here.
func panicRecord(r any, stack []byte, now time.Time) []byte {
	exc := fmt.Sprintf("%T", r)
	if err, ok := r.(error); ok {
		exc = fmt.Sprintf("%T", err)
	}
	b := []byte(`{"timestamp":`)
	b = strconv.AppendFloat(b, float64(now.UnixMicro())/1e6, 'f', 6, 64)
	b = append(b, `,"task_uuid":"`...)
	b = append(b, newUUID()...)
	b = append(b, `","task_level":[1],"message_type":"eliot:traceback","exception":`...)
	b = appendJSONString(b, []byte(exc))
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, []byte(fmt.Sprint(r)))
	b = append(b, `,"traceback":`...)
	b = appendJSONString(b, stack)
	return append(b, '}')
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// enqueueForced queues rec whatever the policy, evicting old records if
// needed.
func (s *Shipper) enqueueForced(rec []byte) {
	s.c.received.Add(1)
	if len(rec) > s.maxRec {
		s.c.dropped[DropTooLarge].Add(1)
		return
	}
	if r := s.q.pushWith(rec, DropOldest); r != dropNone {
		s.c.dropped[r].Add(1)
	}
}
