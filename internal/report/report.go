// Package report renders spfd's daily report: what the lists stopped
// against what the MTA accepted, hour by hour, the sources of the
// blacklist and how many of their entries came knocking, the top blocked
// prefixes, and the walks. The daemon gathers a Data (spfctl show report
// -j); Text, SVG and HTML draw it, with nothing from elsewhere (no
// scripts, no fonts, no images).
package report

import (
	"time"

	"github.com/spfd/spfd/internal/state"
)

// Data is everything a report shows, as the daemon gathers it.
type Data struct {
	Host      string    `json:"host"`
	Generated time.Time `json:"generated"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Hours     []Hour    `json:"hours"`
	Lists     Lists     `json:"lists"`
	Sources   []Source  `json:"sources"`
	// SeenNote says why the sources have no seen counts, where they have
	// none (pf, the file backend, sets without element counters).
	SeenNote   string    `json:"seen_note,omitempty"`
	TopBlocked []Blocked `json:"top_blocked,omitempty"`
	Walks      Walks     `json:"walks"`
	Offenders  int       `json:"repeat_offenders"`
}

// Hour is one hour of the traffic series.
type Hour struct {
	Start time.Time `json:"start"`
	state.Sample
}

// Lists are the lists' sizes at the end of the report.
type Lists struct {
	WhiteEntries int `json:"white_entries"`
	WhitePushed  int `json:"white_pushed"`
	BlackEntries int `json:"black_entries"`
	BlackPushed  int `json:"black_pushed"`
}

// Source is one source's share of a list, and how many of its entries a
// packet met since they were listed (nil where nobody counts).
type Source struct {
	List    string `json:"list"`
	Source  string `json:"source"`
	Entries int    `json:"entries"`
	Seen    *int   `json:"seen,omitempty"`
}

// Blocked is one of the blacklist's elements that matched the most.
type Blocked struct {
	Prefix  string   `json:"prefix"`
	Packets uint64   `json:"packets"`
	Sources []string `json:"sources,omitempty"`
}

// Walks is the last pass of SPF walks, and the domains by status.
type Walks struct {
	LastPass  time.Time      `json:"last_pass,omitzero"`
	Domains   int            `json:"domains"`
	Complete  int            `json:"complete"`
	TempFail  int            `json:"temporary_failures"`
	PermFail  int            `json:"permanent_failures"`
	Refused   int            `json:"refused"`
	Problems  []string       `json:"problems,omitempty"`
	ByStatus  map[string]int `json:"by_status,omitempty"`
	Whitelist int            `json:"networks"`
}

// Totals adds up the hours.
func (d *Data) Totals() Hour {
	var t Hour
	for _, h := range d.Hours {
		t.Add(h.Sample)
	}
	return t
}

// Denied is what the blacklist stopped in an hour: the new connections
// where the kernel tells them apart, else the packets. connections says
// which.
func (h Hour) Denied() (n uint64, connections bool) {
	if h.BlackConnections > 0 || h.BlackPackets == 0 {
		return h.BlackConnections, true
	}
	return h.BlackPackets, false
}

// deniedUnit names what Denied counts over the whole report.
func (d *Data) deniedUnit() string {
	t := d.Totals()
	if _, conns := t.Denied(); conns {
		return "connections"
	}
	return "packets"
}
