package pleooauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Bounds on a YAML registration. A registration is one flat mapping of 13
// fields, two of them short lists: a real one is well under a kilobyte, a
// few dozen tokens and two levels deep. The YAML parser's work grows faster
// than the document for some shapes (deep nesting, long runs of keys), so
// a document that cannot be a registration is refused before it is parsed,
// and every input is answered in bounded time and memory. JSON is decoded
// in linear time and needs only [MaxRegistrationBytes]. The package
// documentation and docs/registration.md state these bounds for partners.
const (
	// maxYAMLBytes is the largest YAML document [ParseRegistration] reads.
	maxYAMLBytes = 64 << 10
	// maxYAMLTokens is the most YAML tokens (keys, values, punctuation and
	// comments) a YAML document may hold.
	maxYAMLTokens = 4096
	// maxYAMLDepth is how deeply a YAML document may nest mappings and
	// lists; a registration needs two levels.
	maxYAMLDepth = 8
)

// yamlToJSON converts a YAML registration to JSON, refusing before it parses
// what cannot be one (maxYAMLBytes, maxYAMLTokens, maxYAMLDepth), and
// refusing aliases (*name): expanding them is how a few hundred bytes of
// YAML become gigabytes ("billion laughs"), and a registration has no use
// for them. A key given twice stays twice in the JSON, so that
// decodeRegistration reports it as a duplicate_field, as it does for JSON.
func yamlToJSON(data []byte) ([]byte, error) {
	if len(data) > maxYAMLBytes {
		return nil, &SyntaxError{Msg: fmt.Sprintf("a YAML registration is at most %d bytes (64 KiB) and this one is larger; a registration is a flat mapping of 13 fields and needs far less", maxYAMLBytes)}
	}
	tokens := lexer.Tokenize(string(data))
	if len(tokens) > maxYAMLTokens {
		tk := tokens[maxYAMLTokens]
		return nil, syntaxAt(tk, fmt.Sprintf("the YAML document holds more than %d tokens (keys, values, punctuation and comments); a registration is a flat mapping of 13 fields and needs a few dozen", maxYAMLTokens))
	}
	if tk := tooDeep(tokens); tk != nil {
		return nil, syntaxAt(tk, fmt.Sprintf("the YAML document nests mappings or lists more than %d levels deep; a registration is a flat mapping whose values are strings, lists of strings and true/false", maxYAMLDepth))
	}
	for _, tk := range tokens {
		if tk.Type == token.AliasType {
			return nil, syntaxAt(tk, "YAML aliases (*name) are not accepted in a registration; write the value out")
		}
	}
	file, err := parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, err
	}
	var docs []*ast.DocumentNode
	for _, doc := range file.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	switch len(docs) {
	case 0:
		return []byte("null"), nil
	case 1:
	default:
		tk := docs[1].Start
		if tk == nil {
			tk = docs[1].Body.GetToken()
		}
		return nil, syntaxAt(tk, "the file holds more than one YAML document (---); keep one registration per file")
	}
	var out bytes.Buffer
	if err := writeJSON(&out, docs[0].Body); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// syntaxAt makes a SyntaxError at a token's position.
func syntaxAt(tk *token.Token, msg string) *SyntaxError {
	serr := &SyntaxError{Msg: msg}
	if tk != nil && tk.Position != nil {
		serr.Line, serr.Column = tk.Position.Line, tk.Position.Column
	}
	return serr
}

// tooDeep returns the first token at which the document nests deeper than
// maxYAMLDepth, or nil. Flow collections ([...] and {...}) count by their
// brackets; block collections by indentation: the columns of the list
// entries ("-", also several on one line) and of the tokens that start a
// line form a stack, as YAML's own indentation rules do.
func tooDeep(tokens token.Tokens) *token.Token {
	var (
		flow   int
		block  []int // columns of the open block levels
		prevLn int
	)
	for _, tk := range tokens {
		if tk.Position == nil {
			continue
		}
		switch tk.Type {
		case token.CommentType:
			continue
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			flow = max(flow-1, 0)
		}
		first := tk.Position.Line != prevLn
		prevLn = tk.Position.Line
		if flow == 0 && (first || tk.Type == token.SequenceEntryType) ||
			flow == 1 && first && (tk.Type == token.SequenceStartType || tk.Type == token.MappingStartType) {
			col := tk.Position.Column
			for len(block) > 0 && block[len(block)-1] >= col {
				block = block[:len(block)-1]
			}
			block = append(block, col)
		}
		if len(block)+flow > maxYAMLDepth {
			return tk
		}
	}
	return nil
}

// writeList writes items between open and close, separated by commas.
func writeList[T any](out *bytes.Buffer, open byte, items []T, write func(*bytes.Buffer, T) error, close byte) error {
	out.WriteByte(open)
	for i, item := range items {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := write(out, item); err != nil {
			return err
		}
	}
	out.WriteByte(close)
	return nil
}

// writeJSON writes a YAML node as JSON. Mappings keep their keys in order,
// duplicates included; scalars become JSON strings, numbers, true/false or
// null as YAML typed them.
func writeJSON(out *bytes.Buffer, n ast.Node) error {
	switch n := n.(type) {
	case nil:
		out.WriteString("null")
	case *ast.MappingNode:
		return writeList(out, '{', n.Values, writePair, '}')
	case *ast.MappingValueNode:
		return writeList(out, '{', []*ast.MappingValueNode{n}, writePair, '}')
	case *ast.SequenceNode:
		return writeList(out, '[', n.Values, writeJSON, ']')
	case *ast.AnchorNode:
		return writeJSON(out, n.Value)
	case *ast.TagNode:
		if n.Start != nil && (n.Start.Value == "!!str" || n.Start.Value == "tag:yaml.org,2002:str") {
			writeString(out, scalarText(n.Value))
			return nil
		}
		return writeJSON(out, n.Value)
	case *ast.StringNode:
		writeString(out, n.Value)
	case *ast.LiteralNode:
		writeString(out, n.Value.Value)
	case *ast.MergeKeyNode:
		writeString(out, "<<")
	case *ast.NullNode:
		out.WriteString("null")
	case *ast.BoolNode:
		out.WriteString(strconv.FormatBool(n.Value))
	case *ast.IntegerNode, *ast.FloatNode:
		data, err := json.Marshal(n.(ast.ScalarNode).GetValue())
		if err != nil {
			return syntaxAt(n.GetToken(), "a number is out of range")
		}
		out.Write(data)
	case *ast.InfinityNode, *ast.NanNode:
		// Not representable in JSON; a number out of range decodes as "a
		// number" into no field, which is what it is.
		out.WriteString("1e999")
	case *ast.AliasNode:
		return syntaxAt(n.GetToken(), "YAML aliases (*name) are not accepted in a registration; write the value out")
	default:
		return syntaxAt(n.GetToken(), fmt.Sprintf("a YAML %s is not accepted in a registration", n.Type()))
	}
	return nil
}

// writePair writes one "key":value pair. A key that is not a plain scalar
// (a mapping or a list used as a key) is written as a name no field has.
func writePair(out *bytes.Buffer, kv *ast.MappingValueNode) error {
	key := ast.Node(kv.Key)
	if mk, ok := key.(*ast.MappingKeyNode); ok {
		key = mk.Value
	}
	for {
		switch k := key.(type) {
		case *ast.AnchorNode:
			key = k.Value
			continue
		case *ast.TagNode:
			key = k.Value
			continue
		}
		break
	}
	if _, ok := key.(*ast.AliasNode); ok {
		return syntaxAt(key.GetToken(), "YAML aliases (*name) are not accepted in a registration; write the value out")
	}
	writeString(out, scalarText(key))
	out.WriteByte(':')
	return writeJSON(out, kv.Value)
}

// scalarText is a scalar node's text as written ("true", "1.0", "x"), or a
// placeholder for a node that is not a scalar.
func scalarText(n ast.Node) string {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value
	case *ast.LiteralNode:
		return n.Value.Value
	case nil:
		return ""
	case ast.ScalarNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value
		}
	}
	return "(a " + n.Type().String() + ")"
}

func writeString(out *bytes.Buffer, s string) {
	data, _ := json.Marshal(s) // marshalling a string never fails
	out.Write(data)
}

// yamlSyntaxError turns the YAML parser's error into a SyntaxError with its
// position, scrubbed of the input's text, and names a tab where one is the
// likely cause: it is invisible in a message.
func yamlSyntaxError(err error, data []byte) *SyntaxError {
	var serr *SyntaxError
	if errors.As(err, &serr) {
		return serr
	}
	serr = &SyntaxError{Msg: "the document could not be read as YAML"}
	var yamlErr yaml.Error
	if errors.As(err, &yamlErr) {
		serr.Msg = scrub(yamlErr.GetMessage(), data)
		if tok := yamlErr.GetToken(); tok != nil && tok.Position != nil {
			serr.Line, serr.Column = tok.Position.Line, tok.Position.Column
		}
	}
	if line := lineOf(data, serr.Line); bytes.IndexByte(line, '\t') >= 0 {
		serr.Msg += " (the line holds a tab character: YAML indents with spaces only)"
	} else if serr.Line == 0 && bytes.IndexByte(data, '\t') >= 0 {
		serr.Msg += " (the document holds a tab character: YAML indents with spaces only)"
	}
	return serr
}

// lineOf returns the 1-based line n of data, or nil.
func lineOf(data []byte, n int) []byte {
	if n < 1 {
		return nil
	}
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			return nil
		}
		data = data[j+1:]
	}
	if j := bytes.IndexByte(data, '\n'); j >= 0 {
		data = data[:j]
	}
	return data
}
