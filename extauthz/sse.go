package extauthz

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// sseFrame is one dispatched Server-Sent Events message.
type sseFrame struct {
	Event string // "message" when the frame named none
	Data  []byte // the data lines joined by "\n"
	// ID is the last event ID after the frame (the stream's, as a frame
	// without id: keeps the previous one); HasID says the frame set it.
	ID    string
	HasID bool
	// Retry is the reconnection time in milliseconds the frame asked for,
	// -1 when none.
	Retry int64
}

var errSSELineTooLong = errors.New("event stream line too long")

// sseReader parses a text/event-stream body as the HTML Living Standard's
// "Interpreting an event stream" (§9.2.6) says: lines end in CRLF, LF or
// CR; a leading BOM is skipped; ":" starts a comment; "field: value" with
// one optional space after the colon; a blank line dispatches the frame
// (a frame without data is not dispatched, but its id still counts).
// Lines are bounded by maxLine bytes: a longer one is an error (the
// stream is untrusted input and must not grow memory without bound).
type sseReader struct {
	r       *bufio.Reader
	maxLine int
	lastID  string
	started bool
	line    []byte
	// onLine, when set, is called for every line read (comments and
	// keepalives included): the stream's liveness signal.
	onLine func()
}

func newSSEReader(r io.Reader, maxLine int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4096), maxLine: maxLine}
}

// readLine returns the next line without its terminator.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		b, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(s.line) > 0 {
				// An unterminated last line is discarded with the
				// incomplete frame (§9.2.6: "at the end of the file").
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch b {
		case '\n':
			return s.line, nil
		case '\r':
			if nb, err := s.r.Peek(1); err == nil && nb[0] == '\n' {
				_, _ = s.r.ReadByte()
			}
			return s.line, nil
		}
		if len(s.line) >= s.maxLine {
			return nil, errSSELineTooLong
		}
		s.line = append(s.line, b)
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Next returns the next dispatched frame, or the read error (io.EOF when
// the stream ended between frames).
func (s *sseReader) Next() (sseFrame, error) {
	var f sseFrame
	f.Retry = -1
	var data []byte
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseFrame{}, err
		}
		if s.onLine != nil {
			s.onLine()
		}
		if !s.started {
			s.started = true
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		if len(line) == 0 {
			if !hasData {
				// Nothing to dispatch; the id (if any) stays set.
				f = sseFrame{Retry: f.Retry}
				continue
			}
			f.Data = data
			if f.Event == "" {
				f.Event = "message"
			}
			f.ID = s.lastID
			return f, nil
		}
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			f.Event = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			if len(data)+len(value) > s.maxLine {
				return sseFrame{}, errSSELineTooLong
			}
			data = append(data, value...)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.lastID = string(value)
				f.HasID = true
			}
		case "retry":
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 && isDigits(value) {
				f.Retry = n
			}
		}
		// Other field names are ignored.
	}
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
