package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/report"
)

// runReport asks the daemon for the report's data and draws it: plain
// text on standard output (for cron mail), or with -o an SVG chart or a
// self-contained HTML page.
func runReport(env Env, socket string, args []string) int {
	fs := newFlagSet(env, "report")
	days := fs.Int("d", 1, "report on the last `days` days")
	out := fs.String("o", "", "write an SVG chart or an HTML page to `file` (.svg, .html)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "spfctl report: unexpected %q\n", strings.Join(fs.Args(), " "))
		return ExitUsage
	}
	if *days < 1 || *days > control.MaxReportDays {
		fmt.Fprintf(env.Stderr, "spfctl report: -d must be from 1 to %d\n", control.MaxReportDays)
		return ExitUsage
	}
	var draw func(*bytes.Buffer, *report.Data) error
	switch ext := strings.ToLower(filepath.Ext(*out)); {
	case *out == "":
	case ext == ".svg":
		draw = func(b *bytes.Buffer, d *report.Data) error { return report.SVG(b, d) }
	case ext == ".html" || ext == ".htm":
		draw = func(b *bytes.Buffer, d *report.Data) error { return report.HTML(b, d) }
	default:
		fmt.Fprintf(env.Stderr, "spfctl report: -o %s: want a .svg or .html file\n", *out)
		return ExitUsage
	}
	var raw bytes.Buffer
	req := control.Request{Args: []string{"show", "report", "days", strconv.Itoa(*days)}, JSON: true}
	if err := control.Do(env.Ctx, socket, req, &raw); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl report: %v\n", err)
		return ExitFailure
	}
	var d report.Data
	if err := json.Unmarshal(raw.Bytes(), &d); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl report: the daemon's answer: %v\n", err)
		return ExitFailure
	}
	var b bytes.Buffer
	if draw == nil {
		if err := report.Text(&b, &d); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl report: %v\n", err)
			return ExitFailure
		}
		env.Stdout.Write(b.Bytes())
		return ExitOK
	}
	if err := draw(&b, &d); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl report: %v\n", err)
		return ExitFailure
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl report: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
