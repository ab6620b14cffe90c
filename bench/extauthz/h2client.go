package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is a lean gRPC client for one HTTP/2 connection, modelled on
// Envoy's ext_authz gRPC client (one connection per Envoy worker thread,
// many concurrent Check streams multiplexed over it, written and read by
// one event loop). Every call sends exactly what a gRPC client sends on
// the wire: a HEADERS frame (POST /envoy.service.auth.v3.Authorization/Check,
// content-type application/grpc, te trailers, grpc-timeout as Envoy's
// ext_authz sets from its timeout) and a DATA frame with END_STREAM
// carrying the length-prefixed, marshaled CheckRequest. The header block
// is HPACK-encoded once with a dynamic table, as Envoy's encoder would
// after its first request: every later request is a handful of indexed
// header bytes. Responses are parsed as far as the :status, grpc-status
// and the CheckResponse status code; HTTP/2 flow control, SETTINGS and
// PING are honoured.
//
// One goroutine runs the loop: it reads every frame the kernel has
// buffered, queues the next request for each finished stream, and writes
// all the queued frames with one write before it blocks on the next read,
// so that concurrent streams share syscalls as they do in Envoy.
type h2conn struct {
	c       net.Conn
	br      *bufio.Reader
	fr      *http2.Framer
	dec     *hpack.Decoder
	hdrs    []byte // the header block, every field indexed
	first   []byte // the header block as first sent (literals, indexed)
	out     []byte // frames to write on the next flush
	nextID  uint32
	sendWin int64 // connection-level send window (server's receive window)
	strWin  int64 // initial per-stream send window (server's SETTINGS)
	maxStr  uint32
	maxFr   uint32
	unacked int64 // DATA bytes received and not yet returned by WINDOW_UPDATE
	streams map[uint32]*h2stream
	cur     *h2stream     // stream whose header block is being decoded
	pending []pendingCall // requests waiting for send window
	free    []*h2stream   // finished streams, reused
}

type pendingCall struct {
	k     *call
	start time.Time
}

type h2stream struct {
	start      time.Time
	httpStatus string
	grpcStatus string
	msg        []byte
}

const (
	checkPath = authv3.Authorization_Check_FullMethodName
	// Envoy's ext_authz default timeout is 200 ms; Envoy sends it as
	// grpc-timeout.
	grpcTimeout = "200m"
	recvWindow  = 1 << 24
)

func dialH2(addr string) (*h2conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &h2conn{c: c, br: bufio.NewReaderSize(c, 64<<10), nextID: 1, sendWin: 65535, strWin: 65535,
		maxStr: 1 << 31, maxFr: 16384, streams: map[uint32]*h2stream{}}
	h.fr = http2.NewFramer(nil, h.br)
	h.fr.SetMaxReadFrameSize(1 << 20)
	h.dec = hpack.NewDecoder(4096, h.onField)

	// Preface, our SETTINGS (a large stream window, as Envoy's 256 MiB
	// default, so that responses never wait for a WINDOW_UPDATE) and a
	// connection window to match.
	var setup writeBuf
	setup.b = append(setup.b, http2.ClientPreface...)
	sf := http2.NewFramer(&setup, nil)
	_ = sf.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: recvWindow})
	_ = sf.WriteWindowUpdate(0, recvWindow-65535)

	// The header block, encoded twice with the same dynamic table: the
	// first encoding (literals with incremental indexing) goes out with
	// the first request; the second, all indexed, with every request.
	var hb writeBuf
	enc := hpack.NewEncoder(&hb)
	encode := func() []byte {
		hb.b = hb.b[:0]
		for _, f := range []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: checkPath},
			{Name: ":authority", Value: "ext_authz"}, {Name: "content-type", Value: "application/grpc"},
			{Name: "te", Value: "trailers"}, {Name: "grpc-timeout", Value: grpcTimeout},
		} {
			_ = enc.WriteField(f)
		}
		return append([]byte(nil), hb.b...)
	}
	h.first = encode()
	h.hdrs = encode()
	if _, err := c.Write(setup.b); err != nil {
		c.Close()
		return nil, err
	}
	// Wait for the server's SETTINGS.
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("http2 handshake: %w", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := h.onFrame(f); err != nil {
				c.Close()
				return nil, err
			}
			break
		}
		if err := h.onFrame(f); err != nil {
			c.Close()
			return nil, err
		}
	}
	return h, nil
}

// takeHeaderBlock is the literal encoding for the first stream, the
// indexed one after it.
func (h *h2conn) takeHeaderBlock() []byte {
	if h.first != nil {
		b := h.first
		h.first = nil
		return b
	}
	return h.hdrs
}

type writeBuf struct{ b []byte }

func (w *writeBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

func appendFrameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// queue adds one Check call to the next flush, or keeps it pending while
// the server's flow-control window is too small for its DATA frame.
func (h *h2conn) queue(k *call, now time.Time) error {
	n := int64(5 + len(k.raw))
	if n > int64(h.maxFr) {
		return fmt.Errorf("request of %d bytes is larger than one DATA frame (%d)", n, h.maxFr)
	}
	if n > h.sendWin || n > h.strWin || uint32(len(h.streams)) >= h.maxStr {
		h.pending = append(h.pending, pendingCall{k, now})
		return nil
	}
	h.sendWin -= n
	id := h.nextID
	h.nextID += 2
	hb := h.takeHeaderBlock()
	h.out = appendFrameHeader(h.out, len(hb), http2.FrameHeaders, http2.FlagHeadersEndHeaders, id)
	h.out = append(h.out, hb...)
	h.out = appendFrameHeader(h.out, int(n), http2.FrameData, http2.FlagDataEndStream, id)
	h.out = append(h.out, 0, byte(len(k.raw)>>24), byte(len(k.raw)>>16), byte(len(k.raw)>>8), byte(len(k.raw)))
	h.out = append(h.out, k.raw...)
	var st *h2stream
	if n := len(h.free); n > 0 {
		st, h.free = h.free[n-1], h.free[:n-1]
		*st = h2stream{msg: st.msg[:0]}
	} else {
		st = &h2stream{}
	}
	st.start = now
	h.streams[id] = st
	return nil
}

func (h *h2conn) flush() error {
	if len(h.out) == 0 {
		return nil
	}
	_, err := h.c.Write(h.out)
	h.out = h.out[:0]
	return err
}

func (h *h2conn) onField(f hpack.HeaderField) {
	s := h.cur
	if s == nil {
		return
	}
	switch f.Name {
	case ":status":
		s.httpStatus = f.Value
	case "grpc-status":
		s.grpcStatus = f.Value
	}
}

// outcome of one finished stream.
type outcome struct {
	start time.Time
	ok    bool
}

var errGoAway = errors.New("http2: server sent GOAWAY")

// onFrame handles one frame; a finished stream is reported through done.
func (h *h2conn) onFrame(f http2.Frame) error {
	return h.handle(f, nil)
}

func (h *h2conn) handle(f http2.Frame, done func(outcome)) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		err := f.ForeachSetting(func(s http2.Setting) error {
			switch s.ID {
			case http2.SettingInitialWindowSize:
				h.strWin = int64(s.Val)
			case http2.SettingMaxConcurrentStreams:
				h.maxStr = s.Val
			case http2.SettingMaxFrameSize:
				h.maxFr = s.Val
			case http2.SettingHeaderTableSize:
				// Our encoder's table stays at the default 4096 bytes.
			}
			return nil
		})
		if err != nil {
			return err
		}
		h.out = appendFrameHeader(h.out, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	case *http2.PingFrame:
		if !f.IsAck() {
			h.out = appendFrameHeader(h.out, 8, http2.FramePing, http2.FlagPingAck, 0)
			h.out = append(h.out, f.Data[:]...)
		}
	case *http2.WindowUpdateFrame:
		if f.StreamID == 0 {
			h.sendWin += int64(f.Increment)
		}
	case *http2.GoAwayFrame:
		return fmt.Errorf("%w (%v)", errGoAway, f.ErrCode)
	case *http2.HeadersFrame:
		h.cur = h.streams[f.StreamID]
		if _, err := h.dec.Write(f.HeaderBlockFragment()); err != nil {
			return err
		}
		if err := h.dec.Close(); err != nil {
			return err
		}
		if !f.HeadersEnded() {
			return errors.New("http2: CONTINUATION frames are not expected from the sidecar")
		}
		h.cur = nil
		if f.StreamEnded() {
			h.finish(f.StreamID, done)
		}
	case *http2.DataFrame:
		h.unacked += int64(f.Length)
		if s := h.streams[f.StreamID]; s != nil {
			s.msg = append(s.msg, f.Data()...)
		}
		if f.StreamEnded() {
			h.finish(f.StreamID, done)
		}
		if h.unacked >= recvWindow/2 {
			h.out = appendFrameHeader(h.out, 4, http2.FrameWindowUpdate, 0, 0)
			h.out = binary.BigEndian.AppendUint32(h.out, uint32(h.unacked))
			h.unacked = 0
		}
	case *http2.RSTStreamFrame:
		if s := h.streams[f.StreamID]; s != nil {
			delete(h.streams, f.StreamID)
			if done != nil {
				done(outcome{start: s.start})
			}
		}
	}
	return nil
}

// finish reports a stream whose END_STREAM arrived: OK when the HTTP
// status is 200, grpc-status 0 and the CheckResponse status code 0.
func (h *h2conn) finish(id uint32, done func(outcome)) {
	s := h.streams[id]
	if s == nil {
		return
	}
	delete(h.streams, id)
	ok := s.httpStatus == "200" && s.grpcStatus == "0" && len(s.msg) >= 5 && s.msg[0] == 0 &&
		int(binary.BigEndian.Uint32(s.msg[1:5])) == len(s.msg)-5 && statusCode(s.msg[5:]) == 0
	h.free = append(h.free, s)
	if done != nil {
		done(outcome{start: s.start, ok: ok})
	}
}

// run keeps inFlight Check streams open on the connection until next
// returns nil or stop is set, calling record for each finished one.
func (h *h2conn) run(inFlight int, next func() *call, stopped func() bool, record func(el time.Duration, ok bool)) error {
	outstanding := 0
	more := true
	issue := func(now time.Time) error {
		if !more || stopped() {
			more = false
			return nil
		}
		k := next()
		if k == nil {
			more = false
			return nil
		}
		outstanding++
		return h.queue(k, now)
	}
	now := time.Now()
	for range inFlight {
		if err := issue(now); err != nil {
			return err
		}
	}
	var issueErr error
	done := func(o outcome) {
		outstanding--
		t := time.Now()
		record(t.Sub(o.start), o.ok)
		if err := issue(t); err != nil && issueErr == nil {
			issueErr = err
		}
	}
	for outstanding > 0 {
		// Requests held back by flow control go first.
		if len(h.pending) > 0 {
			p := h.pending
			h.pending = nil
			for _, pc := range p {
				if err := h.queue(pc.k, pc.start); err != nil {
					return err
				}
			}
		}
		if h.br.Buffered() == 0 {
			if err := h.flush(); err != nil {
				return err
			}
		}
		f, err := h.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("http2: the sidecar closed the connection")
			}
			return err
		}
		if err := h.handle(f, done); err != nil {
			return err
		}
		if issueErr != nil {
			return issueErr
		}
	}
	return h.flush()
}

func (h *h2conn) close() error { return h.c.Close() }
