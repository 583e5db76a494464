package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var kcvRE = regexp.MustCompile(`KCV:? ([0-9A-F]{6})`)

func TestMKComponentsLoadStatus(t *testing.T) {
	cfg := hsmConfigFile(t, "mk")
	out := filepath.Join(t.TempDir(), "mk")

	code, stdout, stderr := runCLI(t, "", "mk", "status", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "no master key") {
		t.Fatalf("status before load: %d %q %q", code, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, "", "mk", "components", "--config", cfg, "--count", "3", "--out", out)
	if code != 0 {
		t.Fatalf("components: %d %q", code, stderr)
	}
	kcvs := kcvRE.FindAllStringSubmatch(stdout, -1)
	if len(kcvs) != 4 {
		t.Fatalf("want 3 component KCVs and the master KCV in %q", stdout)
	}
	master := kcvs[3][1]
	files := make([]string, 3)
	for i := range files {
		files[i] = filepath.Join(out, "component-"+string(rune('1'+i))+".txt")
		st, err := os.Stat(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", files[i], st.Mode().Perm())
		}
		c, err := readComponentFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if c.Index != i+1 || c.Count != 3 || c.KCV.String() != kcvs[i][1] || c.MasterKCV.String() != master {
			t.Errorf("component file %d: index %d count %d kcv %s master %s", i+1, c.Index, c.Count, c.KCV, c.MasterKCV)
		}
		// The component's secret digits appear in its file only, never on the terminal.
		if hexDigits := componentHex(t, files[i]); strings.Contains(stdout+stderr, hexDigits) {
			t.Error("component value printed")
		}
		c.Zero()
	}
	// Never overwritten.
	if code, _, stderr := runCLI(t, "", "mk", "components", "--config", cfg, "--count", "3", "--out", out); code == 0 || !strings.Contains(stderr, "never overwritten") {
		t.Fatalf("second components run into the same dir: %d %q", code, stderr)
	}

	// Too few components: refused before the HSM is touched.
	if code, _, stderr := runCLI(t, "", "mk", "load", "--config", cfg, "--component", files[0], "--component", files[1]); code == 0 || !strings.Contains(stderr, "ceremony made 3") {
		t.Fatalf("load with 2 of 3: %d %q", code, stderr)
	}
	// A component whose bytes do not match its KCV: named, nothing loaded.
	bad := filepath.Join(t.TempDir(), "bad.txt")
	body, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	hexv := componentHex(t, files[1])
	flipped := []byte(hexv)
	if flipped[0] == '0' {
		flipped[0] = '1'
	} else {
		flipped[0] = '0'
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(body), hexv, string(flipped), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "", "mk", "load", "--config", cfg, "--component", files[0], "--component", bad, "--component", files[2])
	if code == 0 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "kcv mismatch") || strings.Contains(stderr, string(flipped)) {
		t.Fatalf("load with an altered component: %d %q", code, stderr)
	}
	// Wrong expected master KCV: refused.
	if code, _, stderr := runCLI(t, "", "mk", "load", "--config", cfg, "--master-kcv", "000000",
		"--component", files[0], "--component", files[1], "--component", files[2]); code == 0 || !strings.Contains(stderr, "differs") {
		t.Fatalf("load with a wrong --master-kcv: %d %q", code, stderr)
	}
	if _, stdout, _ := runCLI(t, "", "mk", "status", "--config", cfg); !strings.Contains(stdout, "no master key") {
		t.Fatalf("a failed load left a master key: %q", stdout)
	}

	code, stdout, stderr = runCLI(t, "", "mk", "load", "--config", cfg, "--component", files[2], "--component", files[0], "--component", files[1])
	if code != 0 {
		t.Fatalf("load: %d %q", code, stderr)
	}
	for i := range 3 {
		if !strings.Contains(stdout, kcvs[i][1]) {
			t.Errorf("load output does not show component %d's KCV: %q", i+1, stdout)
		}
	}
	if !strings.Contains(stdout, "KCV "+master+" (matches)") {
		t.Fatalf("load output: %q", stdout)
	}

	code, stdout, _ = runCLI(t, "", "mk", "status", "--config", cfg, "--output", "json")
	var st struct {
		Present bool   `json:"master_key_present"`
		KCV     string `json:"master_kcv"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || !st.Present || st.KCV != master {
		t.Fatalf("status after load: %d %q %v", code, stdout, err)
	}
	code, _, stderr = runCLI(t, "", "mk", "load", "--config", cfg, "--component", files[0], "--component", files[1], "--component", files[2])
	if code == 0 || !strings.Contains(stderr, "already holds a master key (KCV "+master+")") {
		t.Fatalf("second load: %d %q", code, stderr)
	}
}

func componentHex(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`component = "([0-9a-f]{64})"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no component line", path)
	}
	return string(m[1])
}

func TestParseComponentStrict(t *testing.T) {
	good := "format = \"panvault-mk-component-v1\"\nindex = 1\ncount = 2\nkcv = \"ABCDEF\"\nmaster_kcv = \"012345\"\ncomponent = \"" +
		strings.Repeat("ab", 32) + "\"\n"
	c, err := parseComponent("f", []byte(good))
	if err != nil || c.Index != 1 || c.Count != 2 || len(c.Value) != 32 {
		t.Fatalf("good file: %+v %v", c, err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown key":    {"index = 1", "index = 1\nowner = \"x\"", "owner: unknown key"},
		"duplicate":      {"index = 1", "index = 1\nindex = 1", "index: duplicate"},
		"missing":        {"count = 2\n", "", "count: missing"},
		"short":          {strings.Repeat("ab", 32), strings.Repeat("ab", 31), "component: want 64"},
		"not hex":        {strings.Repeat("ab", 32), "zz" + strings.Repeat("ab", 31), "component: not hex"},
		"format":         {"-v1", "-v9", "unknown format"},
		"index > count":  {"index = 1", "index = 3", "greater than count"},
		"unquoted kcv":   {`kcv = "ABCDEF"`, `kcv = ABCDEF`, "kcv: want a quoted string"},
		"bad kcv":        {`kcv = "ABCDEF"`, `kcv = "ABCDEG"`, "kcv: want 6 hex"},
		"not key=value":  {"index = 1", "index 1", "want key = value"},
		"count too high": {"count = 2", "count = 99", "count: want a number"},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatal("test bug")
			}
			bad := strings.Replace(good, tc.from, tc.to, 1)
			_, err := parseComponent("f", []byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "abab") {
				t.Fatal("error contains component digits")
			}
		})
	}
}

// mk load and mk stage take only a complete set of one master key's
// components, each once; a refused set is left zeroed.
func TestReadComponentSet(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, index, count int, master string) string {
		path := filepath.Join(dir, name)
		body := fmt.Sprintf("format = %q\nindex = %d\ncount = %d\nkcv = \"ABCDEF\"\nmaster_kcv = %q\ncomponent = %q\n",
			componentFormat, index, count, master, strings.Repeat("ab", 32))
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	one, two := write("c1", 1, 2, "012345"), write("c2", 2, 2, "012345")
	parsed, enc, err := readComponentSet([]string{two, one}, nil)
	if err != nil || len(parsed) != 2 || parsed[0].Index != 2 || parsed[1].Index != 1 || enc[one] || enc[two] {
		t.Fatalf("a complete set: %v %v %v", parsed, enc, err)
	}
	other := write("other", 2, 2, "ABCDEF")
	three := write("c3", 3, 3, "012345")
	for name, tc := range map[string]struct {
		files []string
		want  string
	}{
		"twice":          {[]string{one, one}, "are both component 1"},
		"other ceremony": {[]string{one, other}, "belong to different ceremonies"},
		"other count":    {[]string{one, three}, "belong to different ceremonies"},
		"incomplete":     {[]string{one}, "1 component files given; the ceremony made 2"},
		"missing file":   {[]string{one, filepath.Join(dir, "none")}, "none"},
	} {
		parsed, _, err := readComponentSet(tc.files, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		for _, c := range parsed {
			if !bytes.Equal(c.Value, make([]byte, len(c.Value))) {
				t.Errorf("%s: %s left holding its component", name, c.Path)
			}
		}
	}
}
