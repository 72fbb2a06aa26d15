package printable

import "testing"

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		control, vs, token   bool
		stripped, vsTrimmed3 string
	}{
		{"abc", false, true, true, "abc", "abc"},
		{"a b", false, true, false, "a b", "a b"},
		{"a\x00b", true, false, false, "ab", "ab"},
		{"a\x7fb\r\n", true, false, false, "ab", "ab"},
		{"é", false, false, false, "é", ""},
		{"", false, true, false, "", ""},
		{"evil@x.com\x00@corp", true, false, false, "evil@x.com@corp", "evi"},
	} {
		if got := HasControl(tc.in); got != tc.control {
			t.Errorf("HasControl(%q) = %v", tc.in, got)
		}
		if got := IsVSChars(tc.in); got != tc.vs {
			t.Errorf("IsVSChars(%q) = %v", tc.in, got)
		}
		if got := IsToken(tc.in); got != tc.token {
			t.Errorf("IsToken(%q) = %v", tc.in, got)
		}
		if got := Strip(tc.in); got != tc.stripped {
			t.Errorf("Strip(%q) = %q", tc.in, got)
		}
		if got := VSChars(tc.in, 3); got != tc.vsTrimmed3 {
			t.Errorf("VSChars(%q, 3) = %q", tc.in, got)
		}
	}
}
