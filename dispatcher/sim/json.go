package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ReadJSON reads a JSON trace: an array of row objects, or a stream of
// them (JSON lines). The keys are the CSV column names; name is used in
// errors.
func ReadJSON(r io.Reader, name string) ([]Row, error) {
	lc := &lineCounter{r: r, lastNL: -1}
	dec := json.NewDecoder(lc)
	fail := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lc.pos(se.Offset)
			return posError(name, line, col, "", err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s: unexpected end of the file", ErrTrace, name)
		}
		return fmt.Errorf("%w: %s: %v", ErrTrace, name, err)
	}
	array := false
	if first, err := lc.peek(); err == nil && first == '[' {
		if _, err := dec.Token(); err != nil {
			return nil, fail(err)
		}
		array = true
	}
	p := newRowParser()
	var rows []Row
	for array && dec.More() || !array {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if !array && errors.Is(err, io.EOF) {
				break
			}
			return nil, fail(err)
		}
		start := dec.InputOffset() - int64(len(raw))
		row, err := p.object(raw, start, lc, name)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	if array {
		if _, err := dec.Token(); err != nil {
			return nil, fail(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: data after the array", ErrTrace, name)
		}
	}
	return rows, nil
}

// object parses one row object that starts at offset start.
func (p *rowParser) object(raw json.RawMessage, start int64, lc *lineCounter, name string) (Row, error) {
	line, col := lc.pos(start)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Row{}, posError(name, line, col, "", fmt.Errorf("want an object with the keys %s", strings.Join(Columns, ", ")))
	}
	at := func(key string) (int, int) { // where key is, for errors
		if i := bytes.Index(raw, []byte(`"`+key+`"`)); i >= 0 {
			return lc.pos(start + int64(i))
		}
		return line, col
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(Columns, k) {
			l, c := at(k)
			return Row{}, posError(name, l, c, k, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(Columns, ", ")))
		}
	}
	row := newRow(line)
	for _, k := range Columns {
		v, err := cellOf(fields[k])
		if err == nil && v == "" && slices.Contains(required, k) {
			err = errors.New("missing (it has no default)")
		}
		if err == nil && v != "" {
			err = p.set(&row, k, v)
		}
		if err != nil {
			l, c := at(k)
			return Row{}, posError(name, l, c, k, err)
		}
	}
	finish(&row)
	return row, nil
}

// cellOf turns a JSON value into the text of a CSV cell: a string's
// contents or a number's digits; null and absent are empty.
func cellOf(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return strings.TrimSpace(s), err
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", fmt.Errorf("%s: want a number or a string", raw)
}

// lineCounter passes a stream through, noting where lines start, so that
// byte offsets (which only grow) turn into lines and columns.
type lineCounter struct {
	r      io.Reader
	read   int64   // bytes passed on
	nl     []int64 // offsets of newlines not yet passed by pos
	line   int     // newlines passed by pos
	lastNL int64   // offset of the last of them, -1 before the first
	ahead  []byte  // bytes peeked and not yet passed on
}

func (c *lineCounter) Read(b []byte) (int, error) {
	var n int
	var err error
	if len(c.ahead) > 0 {
		n = copy(b, c.ahead)
		c.ahead = c.ahead[n:]
	} else {
		n, err = c.r.Read(b)
	}
	for i := 0; i < n; {
		k := bytes.IndexByte(b[i:n], '\n')
		if k < 0 {
			break
		}
		c.nl = append(c.nl, c.read+int64(i+k))
		i += k + 1
	}
	c.read += int64(n)
	return n, err
}

// peek returns the first byte that is not white space, keeping what it
// read for the next Read.
func (c *lineCounter) peek() (byte, error) {
	buf := make([]byte, 512)
	for {
		n, err := c.r.Read(buf)
		c.ahead = append(c.ahead, buf[:n]...)
		if t := bytes.TrimSpace(c.ahead); len(t) > 0 {
			return t[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// pos returns the 1-based line and column of byte offset off.
func (c *lineCounter) pos(off int64) (line, col int) {
	for len(c.nl) > 0 && c.nl[0] < off {
		c.lastNL = c.nl[0]
		c.nl = c.nl[1:]
		c.line++
	}
	return c.line + 1, int(off - c.lastNL)
}
