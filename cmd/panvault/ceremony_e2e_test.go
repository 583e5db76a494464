package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/devcluster/devclustertest"
)

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %q", what, within, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// proposeID runs `ceremony propose ARGS... -o json` as admin and returns the id.
func proposeID(t *testing.T, bin string, admin map[string]string, args ...string) string {
	t.Helper()
	code, out, stderr := cli(t, bin, admin, "", append(append([]string{"ceremony", "propose"}, args...), "-o", "json")...)
	var resp struct {
		Ceremony struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"ceremony"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || len(resp.Ceremony.ID) != 16 || resp.Ceremony.Status != "CEREMONY_STATUS_PENDING" {
		t.Fatalf("propose %v: exit %d, %q, stderr %q", args, code, out, stderr)
	}
	return resp.Ceremony.ID
}

type keyListJSON struct {
	Keys []struct {
		Name          string `json:"name"`
		LatestVersion uint32 `json:"latest_version"`
		Versions      []struct {
			Version uint32 `json:"version"`
			State   string `json:"state"`
		} `json:"versions"`
	} `json:"keys"`
}

func latestVersion(t *testing.T, bin string, admin map[string]string, key string) (uint32, map[uint32]string) {
	t.Helper()
	code, out, stderr := cli(t, bin, admin, "", "key", "list", "-o", "json")
	var kl keyListJSON
	if code != 0 || json.Unmarshal([]byte(out), &kl) != nil {
		t.Fatalf("key list: %d %q %q", code, out, stderr)
	}
	for _, k := range kl.Keys {
		if k.Name == key {
			states := map[uint32]string{}
			for _, v := range k.Versions {
				states[v.Version] = v.State
			}
			return k.LatestVersion, states
		}
	}
	t.Fatalf("key list has no %s: %q", key, out)
	return 0, nil
}

// TestCeremonyCLI drives M-of-N ceremonies through the real binary against
// `panvault dev` (three nodes, custodians alice, bob and carol with key
// files, quorum 2): a rotation approved by two custodians, refusals by exit
// status, an FF1 rotation with retokenize, a rejection, the log audit, the
// re-encryption job watched to its end, and a restart that keeps the
// registry.
func TestCeremonyCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the binary and runs a cluster of processes")
	}
	devclustertest.RequireSoftHSM(t)
	bin := devclustertest.BuildBinary(t)
	dir := filepath.Join(t.TempDir(), "dev")
	dev := startDev(t, bin, dir, "--nodes", "3")
	dev.waitFile(t, filepath.Join(dir, "client.env"))
	client := parseEnvFile(t, filepath.Join(dir, "client.env"))
	admin := parseEnvFile(t, filepath.Join(dir, "admin.env"))
	key := func(name string) string { return filepath.Join(dir, "custodians", name+".pem") }

	code, out, stderr := cli(t, bin, client, "", "custodian", "list", "-o", "json")
	var reg struct {
		Custodians []struct{ Name, Fingerprint string } `json:"custodians"`
		Quorum     uint32                               `json:"quorum"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &reg) != nil || len(reg.Custodians) != 3 || reg.Quorum != 2 ||
		reg.Custodians[0].Name != "alice" || reg.Custodians[2].Name != "carol" {
		t.Fatalf("custodian list: %d %q %q", code, out, stderr)
	}

	pans := devclustertest.PANs(3, 7)
	code, out, stderr = cli(t, bin, client, "", "tokenize", "--scheme", "pan", pans[0])
	if code != 0 {
		t.Fatalf("tokenize: %d %q", code, stderr)
	}
	vaulted := strings.TrimSpace(out)
	code, out, stderr = cli(t, bin, client, "", "tokenize", "--scheme", "pan-ff1", pans[1])
	if code != 0 {
		t.Fatalf("tokenize ff1: %d %q", code, stderr)
	}
	ff1v1 := strings.TrimSpace(out)

	// Rotation of the PAN-encryption key.
	id := proposeID(t, bin, admin, "rotate-key", "pan-encryption")

	// An unregistered key is refused by the vault.
	stranger := filepath.Join(t.TempDir(), "mallory.pem")
	if code, _, stderr := cli(t, bin, client, "", "custodian", "keygen", "--custodian-key", stranger); code != 0 {
		t.Fatalf("keygen: %d %q", code, stderr)
	}
	code, out, stderr = cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", stranger, "--yes")
	if code != 1 || !strings.Contains(stderr, "PERMISSION_DENIED") || !strings.Contains(out, "not a registered custodian's key") {
		t.Fatalf("approval with an unregistered key: %d %q %q", code, out, stderr)
	}
	// Without --yes and without a terminal, nothing is signed.
	if code, _, stderr := cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", key("alice")); code != 2 || !strings.Contains(stderr, "--yes") {
		t.Fatalf("approval without confirmation: %d %q", code, stderr)
	}
	code, out, stderr = cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", key("alice"), "--yes")
	if code != 0 || !strings.Contains(out, "Proposal "+id+" (rotate-key)") || !strings.Contains(out, "Transcript hash: sha256:"+id) ||
		!strings.Contains(out, "Rotate key pan-encryption") || !strings.Contains(out, "approval by alice recorded: 1 of 2 approvals") {
		t.Fatalf("alice's approval: %d %q %q", code, out, stderr)
	}
	// The same custodian twice: refused.
	if code, _, stderr := cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", key("alice"), "--yes"); code != 1 || !strings.Contains(stderr, "ALREADY_EXISTS") {
		t.Fatalf("alice's second approval: %d %q", code, stderr)
	}
	if v, _ := latestVersion(t, bin, admin, "pan-encryption"); v != 1 {
		t.Fatalf("key rotated after one approval: latest version %d", v)
	}
	code, out, _ = cli(t, bin, admin, "", "ceremony", "show", id)
	if code != 0 || !strings.Contains(out, "Status: pending, 1 of 2 approvals") || !strings.Contains(out, "approved by alice") {
		t.Fatalf("show: %d %q", code, out)
	}
	code, out, stderr = cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", key("bob"), "--yes")
	if code != 0 || !strings.Contains(out, "quorum reached (2 of 2); ceremony "+id+" executed") {
		t.Fatalf("bob's approval: %d %q %q", code, out, stderr)
	}
	v, states := latestVersion(t, bin, admin, "pan-encryption")
	if v != 2 || states[2] != "KEY_STATE_ACTIVE" || states[1] != "KEY_STATE_DECRYPT_ONLY" {
		t.Fatalf("after the rotation: latest %d, states %v", v, states)
	}
	code, out, _ = cli(t, bin, admin, "", "key", "list")
	if code != 0 || !strings.Contains(out, "ROTATION DUE") || !strings.Contains(out, "(in 364d)") {
		t.Fatalf("key list text: %d %q", code, out)
	}
	// A vote on a closed ceremony is refused before anything is signed.
	if code, _, stderr := cli(t, bin, client, "", "ceremony", "approve", id, "--custodian-key", key("carol"), "--yes"); code != 1 || !strings.Contains(stderr, "takes no more votes") {
		t.Fatalf("approval of an executed ceremony: %d %q", code, stderr)
	}

	// The re-encryption job the rotation started, watched to its end in
	// the background while the rest runs (it waits a grace period first).
	watchOut := filepath.Join(t.TempDir(), "watch.out")
	watch := exec.Command(bin, "key", "reencrypt", "pan-encryption", "--watch")
	watch.Env = append(os.Environ(), "PANVAULT_ADDR="+admin[envAddr], "PANVAULT_CACERT="+admin[envCACert],
		"PANVAULT_CERT="+admin[envCert], "PANVAULT_KEY="+admin[envKey])
	wf, err := os.Create(watchOut)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	watch.Stdout, watch.Stderr = wf, wf
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan error, 1)
	go func() { watchDone <- watch.Wait() }()
	t.Cleanup(func() {
		select {
		case <-watchDone:
		default:
			_ = watch.Process.Kill()
			<-watchDone
		}
	})

	// Tokenization goes on with version 2; version 1 tokens still detokenize.
	// A node applies the rotation a moment after the ceremony's reply
	// (until then it tokenizes with version 1, which stays valid).
	eventually(t, 10*time.Second, "tokenize with version 2", func() (bool, string) {
		code, out, stderr := cli(t, bin, client, "", "tokenize", "--scheme", "pan", pans[2], "-o", "json")
		return code == 0 && strings.Contains(out, `"key_version": 2`), out + stderr
	})
	if code, out, stderr := cli(t, bin, client, "", "detokenize", "--scheme", "pan", vaulted); code != 0 || out != pans[0]+"\n" {
		t.Fatalf("detokenize a version-1 token: %d %q", code, stderr)
	}

	// FF1 rotation changes tokens: retokenize migrates them.
	fid := proposeID(t, bin, admin, "rotate-key", "pan-fpe", "--ttl", "10m")
	for _, who := range []string{"carol", "alice"} {
		if code, _, stderr := cli(t, bin, client, "", "ceremony", "approve", fid, "--custodian-key", key(who), "--yes"); code != 0 {
			t.Fatalf("%s approves the ff1 rotation: %d %q", who, code, stderr)
		}
	}
	var ff1v2 string
	eventually(t, 10*time.Second, "retokenize to version 2", func() (bool, string) {
		code, out, stderr := cli(t, bin, client, "", "retokenize", "--scheme", "pan-ff1", "--from-version", "1", ff1v1)
		if code != 0 {
			// Only a node that has not applied the rotation yet may answer so.
			if !strings.Contains(stderr, "nothing was migrated") {
				t.Fatalf("retokenize: %d %q %q", code, out, stderr)
			}
			return false, stderr
		}
		ff1v2 = strings.TrimSpace(out)
		return ff1v2 != "" && ff1v2 != ff1v1, out + stderr
	})
	if code, out, stderr := cli(t, bin, client, "", "detokenize", "--scheme", "pan-ff1", ff1v2); code != 0 || out != pans[1]+"\n" {
		t.Fatalf("detokenize the retokenized token: %d %q", code, stderr)
	}
	if code, out, _ := cli(t, bin, client, "", "tokenize", "--scheme", "pan-ff1", pans[1]); code != 0 || strings.TrimSpace(out) != ff1v2 {
		t.Fatalf("tokenize under version 2 gives %q, retokenize gave %q", out, ff1v2)
	}

	// Two rejections out of three make a quorum of two unreachable.
	rid := proposeID(t, bin, admin, "change-quorum", "3")
	for _, who := range []string{"carol", "bob"} {
		if code, _, stderr := cli(t, bin, client, "", "ceremony", "reject", rid, "--custodian-key", key(who), "--reason", "no change request", "--yes"); code != 0 {
			t.Fatalf("%s rejects: %d %q", who, code, stderr)
		}
	}
	code, out, _ = cli(t, bin, admin, "", "ceremony", "list", "--status", "rejected")
	if code != 0 || !strings.Contains(out, rid) || strings.Contains(out, id) {
		t.Fatalf("list rejected: %d %q", code, out)
	}
	code, out, _ = cli(t, bin, admin, "", "ceremony", "list")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, fid) || !strings.Contains(out, rid) {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, stderr = cli(t, bin, admin, "", "ceremony", "audit")
	if code != 0 || !strings.Contains(out, "ceremony log verified") || !strings.Contains(out, "executed: 2") || !strings.Contains(out, "rejected: 1") {
		t.Fatalf("audit: %d %q %q", code, out, stderr)
	}

	// Master-key rotation: components from an HSM's RNG, staged on every
	// node, the ceremony names their KCVs; every key is rewrapped.
	code, out, _ = cli(t, bin, admin, "", "mk", "cluster-status", "-o", "json")
	var before struct {
		CurrentKCV string `json:"current_kcv"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &before) != nil || before.CurrentKCV == "" {
		t.Fatalf("mk cluster-status before the rotation: %d %q", code, out)
	}
	mkOut := filepath.Join(t.TempDir(), "mk")
	code, out, stderr = runCLI(t, "", "mk", "components", "--config", hsmConfigFile(t, "mk-rotate"), "--count", "2", "--out", mkOut, "-o", "json")
	var comps struct {
		Components []componentJSON `json:"components"`
		MasterKCV  string          `json:"master_kcv"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &comps) != nil || len(comps.Components) != 2 {
		t.Fatalf("mk components: %d %q %q", code, out, stderr)
	}
	code, out, stderr = cli(t, bin, admin, "", "mk", "stage", "--component", comps.Components[1].File, "--component", comps.Components[0].File)
	if code != 0 || strings.Count(out, "master key "+comps.MasterKCV+" staged") != 3 {
		t.Fatalf("mk stage: %d %q %q", code, out, stderr)
	}
	mid := proposeID(t, bin, admin, "rotate-master-key", "--master-kcv", comps.MasterKCV,
		"--component-kcv", comps.Components[0].KCV, "--component-kcv", comps.Components[1].KCV)
	for _, who := range []string{"bob", "alice"} {
		if code, out, stderr := cli(t, bin, client, "", "ceremony", "approve", mid, "--custodian-key", key(who), "--yes"); code != 0 {
			t.Fatalf("%s approves the master-key rotation: %d %q %q", who, code, out, stderr)
		}
	}
	code, out, _ = cli(t, bin, admin, "", "mk", "cluster-status", "-o", "json")
	if code != 0 || !strings.Contains(out, `"current_kcv": "`+comps.MasterKCV+`"`) {
		t.Fatalf("mk cluster-status after the rotation: %d %q", code, out)
	}
	if code, out, stderr := cli(t, bin, client, "", "detokenize", "--scheme", "pan", vaulted); code != 0 || out != pans[0]+"\n" {
		t.Fatalf("detokenize under the new master key: %d %q", code, stderr)
	}
	// The old master key leaves every HSM; the current one cannot.
	if code, out, stderr := cli(t, bin, admin, "", "mk", "destroy-old", "--kcv", comps.MasterKCV); code == 0 {
		t.Fatalf("destroy-old of the current master key succeeded: %q %q", out, stderr)
	}
	if code, out, stderr := cli(t, bin, admin, "", "mk", "destroy-old", "--kcv", before.CurrentKCV); code != 0 || strings.Count(out, "destroyed") != 3 {
		t.Fatalf("mk destroy-old: %d %q %q", code, out, stderr)
	}

	select {
	case err := <-watchDone:
		watchDone <- err
		b, _ := os.ReadFile(watchOut)
		if err != nil || !strings.Contains(string(b), "100%") || !strings.Contains(string(b), "-> version 2: done") {
			t.Fatalf("reencrypt --watch: %v\n%s", err, b)
		}
	case <-time.After(90 * time.Second):
		b, _ := os.ReadFile(watchOut)
		t.Fatalf("reencrypt --watch still running after 90s:\n%s", b)
	}

	// A restart keeps the registry as it is.
	dev.interrupt(t)
	if err := os.Remove(filepath.Join(dir, "client.env")); err != nil {
		t.Fatal(err)
	}
	dev2 := startDev(t, bin, dir)
	dev2.waitFile(t, filepath.Join(dir, "client.env"))
	code, out, _ = cli(t, bin, client, "", "custodian", "list", "-o", "json")
	var again struct {
		Custodians []struct{ Name, Fingerprint string } `json:"custodians"`
		Quorum     uint32                               `json:"quorum"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &again) != nil || len(again.Custodians) != 3 || again.Quorum != 2 ||
		again.Custodians[1].Fingerprint != reg.Custodians[1].Fingerprint {
		t.Fatalf("custodians after restart: %d %q", code, out)
	}
	// The nodes restarted without the master key their configuration names
	// (destroyed above): they use the rotated one and serve.
	if code, out, stderr := cli(t, bin, client, "", "detokenize", "--scheme", "pan", vaulted); code != 0 || out != pans[0]+"\n" {
		t.Fatalf("detokenize after a restart without the old master key: %d %q", code, stderr)
	}
	dev2.interrupt(t)
	if !strings.Contains(dev2.stderrText(), "msg=custodians registered=3 dev_keys=3 quorum=2 created=false") || strings.Contains(dev2.stderrText(), "custodian key file created") {
		t.Errorf("restart did not reuse the custodians:\n%s", dev2.stderrText())
	}
}
