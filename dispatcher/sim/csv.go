package sim

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReadCSV reads a CSV trace with a header row; name is used in errors.
func ReadCSV(r io.Reader, name string) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: empty (want a header row naming the columns: %s)", ErrTrace, name, strings.Join(Columns, ","))
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	cols, err := header(head)
	if err != nil {
		line, _ := cr.FieldPos(0)
		return nil, posError(name, line, 0, "", err)
	}
	p := newRowParser()
	var rows []Row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		row := newRow(line)
		for i, v := range rec {
			if v = strings.TrimSpace(v); v == "" {
				if slices.Contains(required, cols[i]) {
					l, c := cr.FieldPos(i)
					return nil, posError(name, l, c, cols[i], errors.New("empty (it has no default)"))
				}
				continue
			}
			if err := p.set(&row, cols[i], v); err != nil {
				l, c := cr.FieldPos(i)
				return nil, posError(name, l, c, cols[i], err)
			}
		}
		finish(&row)
		rows = append(rows, row)
	}
}

// header checks the header row and returns the column names.
func header(head []string) ([]string, error) {
	cols := make([]string, len(head))
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, bom)))
		if !slices.Contains(Columns, h) {
			return nil, fmt.Errorf("column %d: unknown column %q (known: %s)", i+1, h, strings.Join(Columns, ", "))
		}
		if slices.Contains(cols[:i], h) {
			return nil, fmt.Errorf("column %d: %q appears twice", i+1, h)
		}
		cols[i] = h
	}
	for _, c := range required {
		if !slices.Contains(cols, c) {
			return nil, fmt.Errorf("no %s column (the header must name it)", c)
		}
	}
	return cols, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return posError(name, pe.Line, pe.Column, "", pe.Err)
	}
	return fmt.Errorf("%w: %s: %v", ErrTrace, name, err)
}

// WriteCSV writes rows as a CSV trace with every column.
func WriteCSV(w io.Writer, rows []Row) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(strings.Join(Columns, ",") + "\n")
	var buf []byte
	for i := range rows {
		buf = appendCSV(buf[:0], &rows[i])
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// appendCSV appends one row in the order of Columns.
func appendCSV(b []byte, r *Row) []byte {
	b = appendSeconds(b, r.Submit)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Jobs), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Cores), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Memory, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.GPUs), 10)
	b = append(b, ',')
	b = appendField(b, r.GPUModel)
	b = append(b, ',')
	b = appendSeconds(b, r.Walltime)
	b = append(b, ',')
	b = appendSeconds(b, r.Runtime)
	b = append(b, ',')
	b = appendField(b, r.Share)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	b = append(b, ',')
	b = appendField(b, r.Queue)
	return append(b, '\n')
}

// appendSeconds writes d in seconds with no more digits than it needs.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d%time.Second == 0 {
		return strconv.AppendInt(b, int64(d/time.Second), 10)
	}
	return strconv.AppendFloat(b, d.Seconds(), 'f', -1, 64)
}

// appendField quotes s when CSV needs it (a gpu_model expression may hold
// commas or quotes).
func appendField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}
