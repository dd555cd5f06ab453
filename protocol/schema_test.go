package protocol_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/equilateral-agents/equilateral/protocol"
)

var update = flag.Bool("update", false, "rewrite the generated schemas (protocol/schema, docs/schema) and the generated part of docs/protocol.md")

// schemaDirs hold the generated schemas: the embedded copy and the one
// published with the docs.
var schemaDirs = []string{"schema", filepath.Join("..", "docs", "schema")}

const protocolDoc = "../docs/protocol.md"

// generatedSchemas builds every schema from the Go types.
func generatedSchemas(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, b := range protocol.Bodies() {
		s, err := protocol.GenerateSchema(b.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[b.SchemaName()] = s
	}
	return out
}

// TestSchemaFiles fails when a schema file on disk (embedded or in
// docs/schema) is not what the Go types generate, or when either holds a
// file no body has; -update rewrites them, and the generated part of
// docs/protocol.md.
func TestSchemaFiles(t *testing.T) {
	want := generatedSchemas(t)
	if *update {
		for _, dir := range schemaDirs {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range old {
				if _, ok := want[strings.TrimSuffix(filepath.Base(f), ".json")]; !ok {
					os.Remove(f)
				}
			}
			for name, s := range want {
				if err := os.WriteFile(filepath.Join(dir, name+".json"), s, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		writeGeneratedDoc(t)
	}
	for _, dir := range schemaDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		var names []string
		for _, f := range files {
			names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
		}
		if !slices.Equal(names, protocol.SchemaNames()) {
			t.Errorf("%s holds %v, want %v (go generate ./protocol)", dir, names, protocol.SchemaNames())
		}
		for name, s := range want {
			got, err := os.ReadFile(filepath.Join(dir, name+".json"))
			if err != nil || !bytes.Equal(got, s) {
				t.Errorf("%s/%s.json is not what the Go types generate (go generate ./protocol):\n%s", dir, name, s)
			}
		}
	}
	for name, s := range want {
		got, err := protocol.Schema(name)
		if err != nil || !bytes.Equal(got, s) {
			t.Errorf("embedded schema %s is stale (%v); rebuild after go generate ./protocol", name, err)
		}
	}
	if _, err := protocol.Schema("../doc"); err == nil {
		t.Error("Schema reads outside the schemas")
	}
}

// exampleBodies reads testdata/bodies.json: schema name → example bodies.
func exampleBodies(t *testing.T) map[string][]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "bodies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string][]json.RawMessage{}
	for name, v := range all {
		if name == "comment" {
			continue
		}
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			t.Fatalf("bodies.json %s: %v", name, err)
		}
		out[name] = list
	}
	return out
}

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	raw, err := protocol.Schema(name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := "mem://" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema %s does not compile: %v", name, err)
	}
	return s
}

func goType(t *testing.T, name string) reflect.Type {
	t.Helper()
	for _, b := range protocol.Bodies() {
		if b.SchemaName() == name {
			return reflect.TypeOf(b.Value)
		}
	}
	t.Fatalf("no body has schema %s", name)
	return nil
}

// TestSchemasAgreeWithDecode: every schema accepts its example bodies and
// refuses each with an unknown member, a required member left out or
// (unless it holds any JSON value) null, or a required member of the wrong
// JSON type; protocol.Decode, which the
// orchestrator and the SDK read bodies with, decides every case the same.
func TestSchemasAgreeWithDecode(t *testing.T) {
	ex := exampleBodies(t)
	for _, name := range protocol.SchemaNames() {
		t.Run(name, func(t *testing.T) {
			schema := compileSchema(t, name)
			typ := goType(t, name)
			check := func(what string, body []byte, wantOK bool) {
				t.Helper()
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				schemaErr := schema.Validate(inst)
				decodeErr := protocol.Decode(body, reflect.New(typ).Interface())
				if (schemaErr == nil) != wantOK || (decodeErr == nil) != wantOK {
					t.Errorf("%s %s: schema says %v, Decode says %v; want ok=%v", what, body, schemaErr, decodeErr, wantOK)
				}
			}
			if len(ex[name]) == 0 {
				t.Fatalf("testdata/bodies.json has no example of %s", name)
			}
			for i, body := range ex[name] {
				check(fmt.Sprintf("example %d", i), body, true)
				members := map[string]json.RawMessage{}
				json.Unmarshal(body, &members)
				check("with an unknown member", with(members, "surplus", `1`), false)
				for _, f := range protocol.Fields(typ) {
					if !f.Required {
						continue
					}
					check("without "+f.Name, without(members, f.Name), false)
					// null is a value of a member of any JSON value.
					anyValue := f.Type == reflect.TypeFor[json.RawMessage]() || f.Type.Kind() == reflect.Interface
					check(f.Name+" null", with(members, f.Name, `null`), anyValue)
					if wrong := wrongJSON(f.Type); wrong != "" {
						check(f.Name+" of the wrong type", with(members, f.Name, wrong), false)
					}
				}
			}
		})
	}
	for name := range ex {
		if !slices.Contains(protocol.SchemaNames(), name) {
			t.Errorf("testdata/bodies.json has examples of %s, which is no body", name)
		}
	}
}

func with(members map[string]json.RawMessage, name, value string) []byte {
	m := make(map[string]json.RawMessage, len(members)+1)
	for k, v := range members {
		m[k] = v
	}
	m[name] = json.RawMessage(value)
	b, _ := json.Marshal(m)
	return b
}

func without(members map[string]json.RawMessage, name string) []byte {
	m := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		if k != name {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// wrongJSON is a JSON value a member of Go type t may not hold ("" for a
// member that takes any JSON value).
func wrongJSON(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[json.RawMessage]() || t.Kind() == reflect.Interface:
		return ""
	case t == reflect.TypeFor[time.Time]() || t == reflect.TypeFor[protocol.Duration]():
		return `5`
	}
	switch t.Kind() {
	case reflect.String:
		return `42`
	case reflect.Int, reflect.Int64, reflect.Float64:
		return `"1"`
	case reflect.Bool:
		return `"true"`
	case reflect.Slice:
		return `{}`
	case reflect.Struct, reflect.Map:
		return `[]`
	}
	return ""
}

// TestEveryFieldIsDocumented: a new member of a wire type needs a meaning
// before it can be published (GenerateSchema refuses it otherwise).
func TestEveryFieldIsDocumented(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() || seen[typ] {
			return
		}
		seen[typ] = true
		if protocol.TypeDoc(typ.Name()) == "" {
			t.Errorf("%s has no TypeDoc", typ.Name())
		}
		for _, f := range protocol.Fields(typ) {
			if protocol.FieldDoc(typ.Name(), f.Name) == "" {
				t.Errorf("%s.%s has no FieldDoc", typ.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	for _, b := range protocol.Bodies() {
		walk(reflect.TypeOf(b.Value))
	}
}

// TestEveryEventTypeIsRegistered: every event type the protocol package
// names is a registered body (or an event type nothing sends).
func TestEveryEventTypeIsRegistered(t *testing.T) {
	registered := map[string]bool{}
	for _, b := range protocol.Bodies() {
		if b.Type != "" {
			registered[b.Type] = true
			if err := protocol.ValidateEventType(b.Type); err != nil {
				t.Error(err)
			}
		}
	}
	unsent := map[string]bool{}
	for _, typ := range []string{
		protocol.TypeTaskSubmit, protocol.TypeTaskGet, protocol.TypeTaskList, protocol.TypeTaskCancel,
		protocol.TypeTaskAccepted, protocol.TypeTaskRefused, protocol.TypeTaskView, protocol.TypeTaskListing,
		protocol.TypeControlCancel, protocol.TypeReportRefused, protocol.TypeAuditDecision, protocol.TypeSubtaskFinished,
		protocol.TypeAgentHeartbeat, protocol.TypeTaskPartial,
		protocol.TypeTaskSubmitted, protocol.TypeTaskDispatched, protocol.TypeTaskRunning, protocol.TypeTaskProgress,
		protocol.TypeTaskCompleted, protocol.TypeTaskFailed, protocol.TypeTaskTimedOut, protocol.TypeTaskCancelled,
		protocol.TypeTaskDeadLettered, protocol.TypeTaskReleased,
	} {
		if !registered[typ] && !unsent[typ] {
			t.Errorf("event type %s has no registered body", typ)
		}
	}
	for _, kind := range []string{protocol.ReportRunning, protocol.ReportProgress, protocol.ReportPartial,
		protocol.ReportCompleted, protocol.ReportFailed, protocol.ReportReleased, protocol.HeartbeatKind} {
		subject := protocol.AgentReport("<agent>", kind)
		found := slices.ContainsFunc(protocol.Bodies(), func(b protocol.Body) bool {
			return b.Subject == subject && b.Type == protocol.ReportType(kind)
		})
		if !found {
			t.Errorf("report kind %s (%s on %s) is not registered", kind, protocol.ReportType(kind), subject)
		}
	}
	for _, s := range protocol.States() {
		if !slices.ContainsFunc(protocol.Lifecycle(), func(tr protocol.Transition) bool { return slices.Contains(tr.To, s) }) {
			t.Errorf("state %s is no transition's end", s)
		}
	}
	for _, tr := range protocol.Lifecycle() {
		for _, s := range slices.Concat(tr.From, tr.To) {
			if s != "" && !slices.Contains(protocol.States(), s) {
				t.Errorf("state %s of %s is not in States", s, tr.Cause)
			}
		}
	}
}

// The generated part of docs/protocol.md: the table of every event and
// the field table of every body.
const (
	docBegin = "<!-- generated: bodies (go generate ./protocol) -->"
	docEnd   = "<!-- end generated: bodies -->"
)

func generatedDoc(t *testing.T) string {
	t.Helper()
	ex := exampleBodies(t)
	var b strings.Builder
	b.WriteString("| event type | subject | from → to | data |\n|---|---|---|---|\n")
	for _, body := range protocol.Bodies() {
		if body.Type == "" {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s → %s | [`%s`](#%s) |\n", body.Type, body.Subject, body.From, body.To, body.SchemaName(), strings.ToLower(body.SchemaName()))
	}
	b.WriteString("\nExtension attributes each event carries, besides `traceparent`, `tracestate`, `signedextattrs` and `dssematerial`:\n\n")
	b.WriteString("| event type | subject | extensions |\n|---|---|---|\n")
	for _, body := range protocol.Bodies() {
		if body.Type == "" || len(body.Extensions) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", body.Type, body.Subject, strings.Join(body.Extensions, "`, `"))
	}
	var order []reflect.Type
	var add func(reflect.Type)
	add = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() || slices.Contains(order, typ) {
			return
		}
		order = append(order, typ)
		for _, f := range protocol.Fields(typ) {
			add(f.Type)
		}
	}
	for _, body := range protocol.Bodies() {
		add(reflect.TypeOf(body.Value))
	}
	for _, typ := range order {
		name := typ.Name()
		fmt.Fprintf(&b, "\n### %s\n\n%s", name, mdText(protocol.TypeDoc(name)))
		if slices.Contains(protocol.SchemaNames(), name) {
			fmt.Fprintf(&b, " Schema: [`docs/schema/%s.json`](schema/%s.json).", name, name)
		}
		var carried []string
		for _, body := range protocol.Bodies() {
			if body.SchemaName() == name && body.Type != "" {
				carried = append(carried, "`"+body.Type+"` on `"+body.Subject+"`")
			}
		}
		if len(carried) > 0 {
			fmt.Fprintf(&b, " Carried by %s.", strings.Join(carried, ", "))
		}
		b.WriteString("\n\n| field | JSON type | required | meaning |\n|---|---|---|---|\n")
		for _, f := range protocol.Fields(typ) {
			req := "no"
			if f.Required {
				req = "**yes**"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, jsonTypeName(f.Type, f.Required), req, mdText(protocol.FieldDoc(name, f.Name)))
		}
		if list := ex[name]; len(list) > 0 {
			var compact bytes.Buffer
			json.Compact(&compact, list[0])
			fmt.Fprintf(&b, "\nExample:\n\n```json\n%s\n```\n", compact.String())
		}
	}
	return b.String()
}

// mdText keeps prose from the registry literal in a Markdown table.
func mdText(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// jsonTypeName says in words what JSON a member of Go type t holds.
func jsonTypeName(t reflect.Type, required bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[time.Time]():
		return "string (RFC 3339 date-time)"
	case reflect.TypeFor[protocol.Duration]():
		return "string (Go duration)"
	case reflect.TypeFor[json.RawMessage]():
		if required {
			return "any JSON value but null"
		}
		return "any JSON value"
	case reflect.TypeFor[protocol.State]():
		return "string: a [state](#task-states)"
	case reflect.TypeFor[protocol.Reason]():
		return "string: a [reason](#reasons)"
	case reflect.TypeFor[protocol.AgentStatus]():
		var s []string
		for _, v := range protocol.AgentStatuses() {
			s = append(s, "`"+string(v)+"`")
		}
		return "string: " + strings.Join(s, ", ")
	}
	switch t.Kind() {
	case reflect.Interface:
		return "any JSON value"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Slice:
		return "array of " + jsonTypeName(t.Elem(), true)
	case reflect.Struct:
		return "object [`" + t.Name() + "`](#" + strings.ToLower(t.Name()) + ")"
	}
	return t.String()
}

func writeGeneratedDoc(t *testing.T) {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), docBegin)
	_, after, ok2 := strings.Cut(rest, docEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no %q … %q section", protocolDoc, docBegin, docEnd)
	}
	out := before + docBegin + "\n" + generatedDoc(t) + "\n" + docEnd + after
	if err := os.WriteFile(protocolDoc, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestProtocolDoc: docs/protocol.md holds the generated tables as the
// registry makes them, every reason with its retryability, every
// transition of the lifecycle, every state and every registered body.
func TestProtocolDoc(t *testing.T) {
	raw, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	_, rest, _ := strings.Cut(doc, docBegin)
	section, _, _ := strings.Cut(rest, docEnd)
	if strings.TrimSpace(section) != strings.TrimSpace(generatedDoc(t)) {
		t.Errorf("the generated section of %s is stale: go generate ./protocol", protocolDoc)
	}
	for _, b := range protocol.Bodies() {
		if b.Type != "" && !strings.Contains(doc, "`"+b.Type+"`") {
			t.Errorf("%s does not name %s", protocolDoc, b.Type)
		}
		if !strings.Contains(doc, "### "+b.SchemaName()+"\n") {
			t.Errorf("%s has no section for %s", protocolDoc, b.SchemaName())
		}
	}
	for _, r := range protocol.Reasons() {
		retry := "no"
		if r.Retryable() {
			retry = "yes"
		}
		if !strings.Contains(doc, "| `"+string(r)+"` | "+retry+" |") {
			t.Errorf("%s: the reason table has no row `| `%s` | %s |`", protocolDoc, r, retry)
		}
	}
	for _, tr := range protocol.Lifecycle() {
		row := fmt.Sprintf("| %s | %s | %s | %s |", states(tr.From), tr.Cause, states(tr.To), tr.By)
		if !strings.Contains(doc, row) {
			t.Errorf("%s: the transition table has no row %q", protocolDoc, row)
		}
	}
	for _, s := range protocol.States() {
		if !strings.Contains(doc, "| `"+string(s)+"` |") {
			t.Errorf("%s: the state table has no row for %s", protocolDoc, s)
		}
	}
}

func states(list []protocol.State) string {
	var s []string
	for _, v := range list {
		if v == "" {
			s = append(s, "(none)")
			continue
		}
		s = append(s, "`"+string(v)+"`")
	}
	return strings.Join(s, ", ")
}
