package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/pftable"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// jsonSchema is the shape of -j output: per line, each key with the JSON
// type of its value, so a renamed field or a duration turned into
// nanoseconds shows as a diff.
func jsonSchema(t *testing.T, out []byte) []string {
	t.Helper()
	seen := map[string]bool{}
	var lines []string
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var obj map[string]any
		if err := json.Unmarshal(l, &obj); err != nil {
			t.Fatalf("not one JSON object a line: %v\n%s", err, out)
		}
		var keys []string
		for k, v := range obj {
			keys = append(keys, k+":"+jsonType(v))
		}
		slices.Sort(keys)
		s := strings.Join(keys, " ")
		if !seen[s] {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	return lines
}

func jsonType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		if len(v) > 0 {
			return "array of " + jsonType(v[0])
		}
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

// TestJSONContract keeps -j output to what spfctl.8 documents: one JSON
// object a line, times in RFC 3339, durations in whole seconds; the
// fields of every show command are in testdata/json.golden.
func TestJSONContract(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.walk(t, "example.com")
	h.run(t)
	ctx := context.Background()
	waitUntil(t, func() bool {
		_, err := os.Stat(h.d.opts.SocketPath)
		return err == nil
	})
	ctl := func(args ...string) []byte {
		var out bytes.Buffer
		verbose := slices.Contains(args, "-v")
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "-v" })
		if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: args, JSON: true, Verbose: verbose}, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.Bytes()
	}
	ctl("add", "black", "203.0.113.7", "ttl", "1h")
	// And one from a log, which has an offence count.
	h.d.applyOutcomes(config.LogSource{}, []logwatch.Outcome{{Action: logwatch.Ban, Addr: netip.MustParseAddr("203.0.113.9"), Rule: "sshd", TTL: time.Hour}}, logwatch.Position{Path: "/var/log/authlog"})
	h.fake.ElementHits = map[string][]pftable.ElementCount{tableName(h.d.cfg.Black): {{First: netip.MustParseAddr("203.0.113.9"), Last: netip.MustParseAddr("203.0.113.9"), Packets: 1}}}
	var got strings.Builder
	for _, args := range [][]string{
		{"show", "whitelist"}, {"show", "blacklist", "-v"}, {"show", "domains"}, {"show", "status"}, {"show", "stats"}, {"show", "stats", "-v"}, {"show", "report"},
	} {
		out := ctl(args...)
		fmt.Fprintf(&got, "# spfctl -j %s\n", strings.Join(args, " "))
		for _, l := range jsonSchema(t, out) {
			fmt.Fprintln(&got, l)
		}
		if bytes.Contains(out, []byte(`"ttl":`)) || bytes.Contains(out, []byte(`"uptime":`)) {
			t.Errorf("%v: a duration not in seconds:\n%s", args, out)
		}
	}
	golden := filepath.Join("testdata", "json.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("-j output changed shape (update spfctl.8 and run go test -run JSONContract -update):\n--- got\n%s--- want\n%s", got.String(), want)
	}
}
