package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// jsonDocument builds the node tree of a task file that is one JSON
// object, the form API clients send, without the YAML parser: it costs a
// fraction of the time and a third of the memory. The tree is the one the
// YAML parser builds for the same text (strings are double-quoted scalars;
// numbers, booleans and null plain scalars whose tag YAML resolves from
// their text), so decoding and every check are shared. ok is false for
// anything else, which goes through the YAML parser and its messages.
func jsonDocument(data []byte) (root *yaml.Node, ok bool) {
	// encoding/json would take invalid UTF-8 as U+FFFD; YAML refuses it.
	i := bytes.IndexFunc(data, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' })
	if i < 0 || data[i] != '{' || !utf8.Valid(data) {
		return nil, false
	}
	b := jsonBuilder{dec: json.NewDecoder(bytes.NewReader(data)), data: data, line: 1}
	b.dec.UseNumber()
	root, err := b.value()
	if err != nil || root.Kind != yaml.MappingNode {
		return nil, false
	}
	if _, err := b.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false // more after the object: let YAML say what
	}
	return root, true
}

// jsonBuilder turns JSON tokens into YAML nodes, counting lines as it goes.
type jsonBuilder struct {
	dec  *json.Decoder
	data []byte
	off  int64 // where line was counted up to
	line int
}

var errJSONShape = errors.New("not a JSON value")

// next returns the next token and the line it ends on.
func (b *jsonBuilder) next() (json.Token, int, error) {
	tok, err := b.dec.Token()
	if err != nil {
		return nil, 0, err
	}
	end := b.dec.InputOffset()
	b.line += bytes.Count(b.data[b.off:end], []byte{'\n'})
	b.off = end
	return tok, b.line, nil
}

func (b *jsonBuilder) value() (*yaml.Node, error) {
	tok, line, err := b.next()
	if err != nil {
		return nil, err
	}
	return b.node(tok, line)
}

func (b *jsonBuilder) node(tok json.Token, line int) (*yaml.Node, error) {
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Line: line}
		if t == '{' {
			n.Kind = yaml.MappingNode
		} else if t != '[' {
			return nil, errJSONShape
		}
		for b.dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := b.value() // Token returns object keys as strings
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k)
			}
			v, err := b.value()
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, _, err := b.next(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: t, Line: line}, nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: string(t), Line: line}, nil
	case bool:
		v := "false"
		if t {
			v = "true"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: line}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null", Line: line}, nil
	}
	return nil, errJSONShape
}
