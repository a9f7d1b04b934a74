package main

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spfd/spfd/internal/cli"
)

// spfctl scan, on the mixed log bench/classes.sh measures (200
// connections of every class, shuffled), flags every attack connection's
// address and no benign one's: the spfd column of its table, as a test.
func TestScanFlagsEveryAttackAndNoBenign(t *testing.T) {
	var logText, labels bytes.Buffer
	if err := write(&logText, &labels, 200); err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	env := cli.Env{Ctx: context.Background(), Stdin: &logText, Stdout: &out, Stderr: &stderr}
	if code := cli.Main(env, []string{"scan", "-t", "sshd", "-"}); code != 0 {
		t.Fatalf("spfctl scan: exit %d: %s", code, stderr.String())
	}
	// Every address an event names, unless the event says it is exempt.
	flagged := make(map[string]bool)
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 4 && !strings.HasPrefix(line, "#") && !strings.Contains(f[3], "(exempt)") {
			flagged[f[2]] = true
		}
	}
	type tally struct{ conns, flagged int }
	classes := make(map[string]*tally)
	attacks, caught, benign, wrongly := 0, 0, 0, 0
	sc := bufio.NewScanner(&labels)
	for sc.Scan() {
		addr, rest, _ := strings.Cut(sc.Text(), "\t")
		class, attack, _ := strings.Cut(rest, "\t")
		if classes[class] == nil {
			classes[class] = &tally{}
		}
		classes[class].conns++
		if flagged[addr] {
			classes[class].flagged++
		}
		if attack == "true" {
			attacks++
			if flagged[addr] {
				caught++
			}
		} else {
			benign++
			if flagged[addr] {
				wrongly++
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(classes)) {
		t.Logf("%-34s %4d connections, %4d flagged", name, classes[name].conns, classes[name].flagged)
	}
	if attacks == 0 || benign == 0 || caught != attacks || wrongly != 0 {
		t.Errorf("spfd flags %d of %d attack connections (want all) and %d of %d benign ones (want none)", caught, attacks, wrongly, benign)
	}
}
