package gateway

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// update rewrites the generated documentation instead of checking it:
//
//	go test ./gateway -run TestConfigDocs -update   (or: make docs)
var update = flag.Bool("update", false, "rewrite examples/sluice.yaml and the README flag table from Config")

const (
	exampleConfigPath = "../examples/sluice.yaml"
	readmePath        = "../README.md"
	flagsBegin        = "<!-- flags:begin (generated from gateway.Config: make docs) -->"
	flagsEnd          = "<!-- flags:end -->"
)

// TestConfigDocs keeps examples/sluice.yaml and the README's flag table
// what Config's tags say: both are generated from them.
func TestConfigDocs(t *testing.T) {
	example := exampleConfig()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(flagsBegin)), bytes.Index(readme, []byte(flagsEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", flagsBegin, flagsEnd)
	}
	newReadme := slices.Concat(readme[:i+len(flagsBegin)], []byte("\n"+flagTable()), readme[j:])
	if *update {
		if err := os.WriteFile(exampleConfigPath, []byte(example), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readmePath, newReadme, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, _ := os.ReadFile(exampleConfigPath); string(got) != example {
		t.Errorf("examples/sluice.yaml is not what Config's tags say: run `make docs` (go test ./gateway -run TestConfigDocs -update)")
	}
	if !bytes.Equal(readme, newReadme) {
		t.Errorf("README.md's flag table is not what Config's tags say: run `make docs`")
	}
}

// TestExampleConfigListsEveryKey checks the example file's keys against
// Config's, both ways, independently of the generator.
func TestExampleConfigListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(exampleConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := joinKey(prefix, n.Content[i].Value)
				got[k] = true
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix+"[]")
			}
		}
	}
	walk(doc.Content[0], "")
	want := map[string]bool{}
	var add func(t reflect.Type, prefix string)
	add = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || key == "-" || key == "" {
				continue
			}
			k := joinKey(prefix, key)
			want[k] = true
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]():
				add(f.Type, k)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				add(f.Type.Elem(), k+"[]")
			}
		}
	}
	add(reflect.TypeFor[Config](), "")
	for k := range want {
		if !got[k] {
			t.Errorf("examples/sluice.yaml does not list the key %q", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("examples/sluice.yaml lists %q, which Config does not know", k)
		}
	}
}

// TestDefaultsMatchTags keeps the Default* constants equal to the default
// tags the flags read.
func TestDefaultsMatchTags(t *testing.T) {
	c := DefaultConfig()
	if c.HTTPAddr != DefaultHTTPAddr || c.AdminAddr != DefaultAdminAddr || c.DevBroker != DefaultDevBroker ||
		c.Topic != DefaultTopic || c.DLQTopic != DefaultDLQTopic || c.MemoryLimit != DefaultMemoryLimit ||
		c.MaxBody != DefaultMaxBody || c.MaxEvent != DefaultMaxEvent || c.AckTimeout != DefaultAckTimeout ||
		c.ShutdownTimeout != DefaultShutdownTimeout || c.Sink != SinkKafka || c.LogFormat != "text" || c.LogLevel != "info" {
		t.Fatalf("DefaultConfig() = %+v differs from the Default* constants", c)
	}
}

// TestEveryOptionIsDescribed checks each option has the tags the loader
// and the docs need.
func TestEveryOptionIsDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range options() {
		if o.field.Tag.Get("help") == "" {
			t.Errorf("option %s has no help tag", o.field.Name)
		}
		if o.flag == "" && o.yaml == "" && len(o.env) == 0 {
			t.Errorf("option %s has neither a flag, a YAML key nor an environment variable", o.field.Name)
		}
		if o.flag == "" && o.yaml == "" && o.field.Type.Kind() != reflect.String {
			t.Errorf("environment-only option %s must be a string kind", o.field.Name)
		}
		if o.flag != "" && o.field.Tag.Get("name") == "" {
			t.Errorf("option %s has no name tag (its flag)", o.field.Name)
		}
		// --config, and the shortcut for one entry of sources:, are flags
		// only.
		if o.flag != "" && o.yaml == "" && o.flag != "config" && o.flag != "from-topics" && o.flag != "group" {
			t.Errorf("flag --%s has no YAML key", o.flag)
		}
		if seen[o.flag] && o.flag != "" {
			t.Errorf("flag --%s is declared twice", o.flag)
		}
		seen[o.flag] = true
		if o.merge && o.field.Type != reflect.TypeFor[[]string]() {
			t.Errorf("option %s: merge needs a []string", o.field.Name)
		}
	}
}

// exampleConfig renders examples/sluice.yaml from Config's tags.
func exampleConfig() string {
	var b strings.Builder
	b.WriteString(`# sluice run --config examples/sluice.yaml
#
# Every key of ` + "`sluice run`" + `, generated from the tags of gateway.Config
# (make docs). Flags given on the command line override the file, and the
# file overrides the environment variables noted per key. Sizes read like
# 256MiB, 4MiB, 64KiB, 1GiB, 2MB or a plain byte count; durations like
# 500ms, 10s, 1m.
`)
	writeExampleFields(&b, reflect.TypeFor[Config](), "", "")
	return b.String()
}

// writeExampleFields writes the keys of struct type t, indented, with the
// flags of their group prefix.
func writeExampleFields(b *strings.Builder, t reflect.Type, indent, flagPrefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if e := f.Tag.Get("env"); f.IsExported() && key == "-" && e != "" {
			// An environment-only option (a secret): a note, not a key.
			b.WriteString("\n")
			writeComment(b, indent, f.Tag.Get("help"))
			writeComment(b, indent, "Env "+e+" (not a key of this file).")
			continue
		}
		if !f.IsExported() || key == "-" || key == "" {
			continue
		}
		b.WriteString("\n")
		writeComment(b, indent, f.Tag.Get("help"))
		var notes []string
		if f.Tag.Get("kong") != "-" && f.Tag.Get("name") != "" {
			notes = append(notes, "Flag --"+flagPrefix+f.Tag.Get("name")+".")
		}
		if e := f.Tag.Get("env"); e != "" {
			notes = append(notes, "Env "+e+".")
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			notes = append(notes, "Default "+d+".")
		}
		if len(notes) > 0 {
			writeComment(b, indent, strings.Join(notes, " "))
		}
		if _, ok := f.Tag.Lookup("embed"); ok {
			fmt.Fprintf(b, "%s%s:\n", indent, key)
			var group strings.Builder
			writeExampleFields(&group, f.Type, indent+"  ", flagPrefix+f.Tag.Get("prefix"))
			b.WriteString(strings.TrimPrefix(group.String(), "\n"))
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			fmt.Fprintf(b, "%s%s:\n", indent, key)
			var elem strings.Builder
			writeExampleFields(&elem, f.Type.Elem(), "", "")
			// One example element: its first key after "- ", the rest
			// (comments included) indented under it.
			first := true
			for l := range strings.SplitSeq(elem.String(), "\n") {
				switch {
				case l == "":
				case first && !strings.HasPrefix(l, "#"):
					fmt.Fprintf(b, "%s  - %s\n", indent, l)
					first = false
				default:
					fmt.Fprintf(b, "%s    %s\n", indent, l)
				}
			}
			continue
		}
		fmt.Fprintf(b, "%s%s: %s\n", indent, key, exampleValue(f))
	}
}

// exampleValue renders the example tag, else the default, else the zero
// value of f, as YAML.
func exampleValue(f reflect.StructField) string {
	v, ok := f.Tag.Lookup("example")
	if !ok {
		v = f.Tag.Get("default")
	}
	switch {
	case f.Type == reflect.TypeFor[ByteSize]() || f.Type == reflect.TypeFor[time.Duration]():
		if v == "" {
			return "0"
		}
		return v
	case f.Type.Kind() == reflect.Bool:
		if v == "" {
			return "false"
		}
		return v
	case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Float64:
		if v == "" {
			return "0"
		}
		return v
	case f.Type.Kind() == reflect.Slice:
		items := splitList(v)
		for i, it := range items {
			items[i] = yamlScalar(it)
		}
		return "[" + strings.Join(items, ", ") + "]"
	default:
		return strconv.Quote(v)
	}
}

// yamlScalar quotes s unless it reads back as the same plain string.
func yamlScalar(s string) string {
	var back any
	if err := yaml.Unmarshal([]byte(s), &back); err == nil && back == s && !strings.ContainsAny(s, ",[]{}#") {
		return s
	}
	return strconv.Quote(s)
}

// writeComment writes text as "# " lines wrapped at 76 columns.
func writeComment(b *strings.Builder, indent, text string) {
	lineLen := 0
	b.WriteString(indent + "#")
	for w := range strings.FieldsSeq(text) {
		if lineLen > 0 && lineLen+1+len(w) > 74-len(indent) {
			b.WriteString("\n" + indent + "#")
			lineLen = 0
		}
		b.WriteString(" " + w)
		lineLen += 1 + len(w)
	}
	b.WriteString("\n")
}

// flagTable renders the README's flag table from Config's tags.
func flagTable() string {
	var b strings.Builder
	b.WriteString("| flag | YAML key | env | default | what |\n|---|---|---|---|---|\n")
	for _, o := range options() {
		if o.flag == "" && (o.yaml != "" || len(o.env) == 0) {
			continue
		}
		flagCell := "`--" + o.flag + "`"
		if o.flag == "" {
			flagCell = "(env only)"
		}
		cell := func(s string) string {
			if s == "" {
				return ""
			}
			return "`" + s + "`"
		}
		def := o.field.Tag.Get("default")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", flagCell, cell(o.yaml), cell(strings.Join(o.env, ", ")), cell(def),
			strings.ReplaceAll(firstSentence(o.field.Tag.Get("help")), "|", `\|`))
	}
	return b.String()
}

// firstSentence returns text up to its first ". " (or all of it).
func firstSentence(text string) string {
	if i := strings.Index(text, ". "); i >= 0 {
		return text[:i+1]
	}
	return text
}
