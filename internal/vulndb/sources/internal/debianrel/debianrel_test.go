package debianrel

import (
	"testing"

	"github.com/drydock-project/drydock/internal/vulndb"
)

func TestReleaseKey(t *testing.T) {
	for in, want := range map[string]string{
		"12": "12", "6.0": "6", "4.0": "4", "5.0": "5", "3.0": "3.0", "3.1": "3.1", "2.0": "2.0", "1.1": "1.1", "": "",
	} {
		if got := ReleaseKey(in); got != want {
			t.Errorf("ReleaseKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUrgencySeverity(t *testing.T) {
	for in, want := range map[string]vulndb.Severity{
		"unimportant": vulndb.SeverityLow, "low": vulndb.SeverityLow, "low*": vulndb.SeverityLow, "low**": vulndb.SeverityLow,
		"medium": vulndb.SeverityMedium, "medium**": vulndb.SeverityMedium, "high": vulndb.SeverityHigh, "high*": vulndb.SeverityHigh,
	} {
		if got, ok := UrgencySeverity(in); !ok || got != want {
			t.Errorf("UrgencySeverity(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"not yet assigned", "end-of-life", "", "critical"} {
		if got, ok := UrgencySeverity(in); ok || got != vulndb.SeverityUnknown {
			t.Errorf("UrgencySeverity(%q) = %s, %v; want UNKNOWN, false", in, got, ok)
		}
	}
}

func TestCodenames(t *testing.T) {
	m := Codenames()
	if m["bookworm"] != "12" || m["trixie"] != "13" || m["squeeze"] != "6" || m["sarge"] != "3.1" {
		t.Errorf("built-in table: %v", m)
	}
	if _, ok := m["sid"]; ok {
		t.Error("sid has a release key")
	}
	m["bookworm"] = "x"
	if Codenames()["bookworm"] != "12" {
		t.Error("Codenames does not return a copy")
	}
	from := CodenamesFrom([]vulndb.Release{
		{Distro: vulndb.Debian, Version: "16", Series: "Newname"},
		{Distro: vulndb.Debian, Version: "6.0", Series: "squeeze"},
		{Distro: vulndb.Ubuntu, Version: "22.04", Series: "jammy"},
		{Distro: vulndb.Debian, Series: "sid"},
	})
	if from["newname"] != "16" || from["squeeze"] != "6" || from["jammy"] != "" || from["sid"] != "" || from["bookworm"] != "12" {
		t.Errorf("CodenamesFrom: %v", from)
	}
}
