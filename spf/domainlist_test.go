package spf

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestReadDomains(t *testing.T) {
	in := "# common domains\nGmail.com\nyahoo.com. trailing words\n\n  outlook.com # comment\ngmail.com\nbad..name\n" +
		strings.Repeat("x", 300) + ".example\n"
	got, errs := ReadDomains(strings.NewReader(in))
	want := []string{"gmail.com", "yahoo.com", "outlook.com"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "line 7") || !strings.Contains(errs[1].Error(), "line 8") {
		t.Errorf("errors %v, want lines 7 and 8", errs)
	}
}

func TestReadDomainsCommonList(t *testing.T) {
	f, err := os.Open("../testdata/common_domains.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, errs := ReadDomains(f)
	if len(errs) != 0 || len(got) != 102 {
		t.Fatalf("got %d domains, errors %v; want 102 and none", len(got), errs)
	}
}
