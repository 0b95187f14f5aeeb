package tapeformat

import (
	"slices"
	"testing"
)

// TestTypedFieldsFromExtra: labels and manifests of format versions 1 and
// 2 kept the group identity in extra; a reader fills the typed fields.
func TestTypedFieldsFromExtra(t *testing.T) {
	l := Label{FormatVersion: 2, Extra: map[string]string{"group_signature": "ab12", "log_prefix": "E01", "group_id": "3",
		"circular_logging": "true", "group_database_ids": "0,2,5"}}
	l.fillTyped()
	if l.GroupSignature != "ab12" || l.LogPrefix != "E01" || l.GroupID != 3 || !l.CircularLogging || !slices.Equal(l.DatabaseIDs, []int{0, 2, 5}) {
		t.Fatalf("%+v", l)
	}
	v3 := Label{FormatVersion: 3, GroupSignature: "cd", Extra: map[string]string{"group_signature": "ab12"}}
	v3.fillTyped()
	if v3.GroupSignature != "cd" {
		t.Fatal("a version 3 label's typed fields were overwritten from extra")
	}
	mi := ManifestInfo{Extra: map[string]string{"set_type": "full", "group_signature": "ab12", "log_prefix": "E01"}}
	mi.fillTyped()
	if mi.SetType != "full" || mi.GroupSignature != "ab12" || mi.LogPrefix != "E01" {
		t.Fatalf("%+v", mi)
	}
}

// TestValidateNameControl: a name from a set must not carry control
// characters (forged report lines, terminal escapes).
func TestValidateNameControl(t *testing.T) {
	for _, n := range []string{"E00.log\nLOST: nothing", "Mailbox1.edb\x1b[2J", "a\x7fb", "tab\tname"} {
		if ValidateName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
	for _, n := range []string{"Mailbox1.edb", "odd/E0000000A3.log", "Ünïcode.edb"} {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
}
