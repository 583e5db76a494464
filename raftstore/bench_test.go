package raftstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/panvault/panvault/raftstore/raftpb"
	bolt "go.etcd.io/bbolt"
)

// runConcurrent splits b.N operations over conc goroutines.
func runConcurrent(b *testing.B, conc int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	errc := make(chan error, conc)
	b.ResetTimer()
	for range conc {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					errc <- nil
					return
				}
				if err := op(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for range conc {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkPropose measures Propose on a 3-node cluster (real TLS over
// loopback, raft-boltdb, bbolt state) through the leader and a follower.
func BenchmarkPropose(b *testing.B) {
	c := newCluster(b, 3, clusterOpts{tweak: func(cfg *Config) { cfg.ApplyTimeout = 30 * time.Second }})
	ctx := context.Background()
	var run atomic.Int64
	for _, via := range []string{"leader", "follower"} {
		for _, conc := range []int{1, 64} {
			b.Run(fmt.Sprintf("via=%s/conc=%d", via, conc), func(b *testing.B) {
				n := c.leader(b)
				if via == "follower" {
					n = c.followers(b)[0]
				}
				prefix := fmt.Sprintf("r%d-", run.Add(1))
				start := c.leader(b).s.raft.LastIndex()
				runConcurrent(b, conc, func(i int) error {
					k := []byte(prefix + fmt.Sprint(i))
					res, err := n.s.Propose(ctx, PutIfAbsent("bench", k, k))
					if err == nil && !res.Applied {
						err = fmt.Errorf("fresh key not applied")
					}
					return err
				})
				entries := c.leader(b).s.raft.LastIndex() - start
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
				b.ReportMetric(float64(b.N)/float64(max(entries, 1)), "cmds/entry")
			})
		}
	}
}

// countFSM is the in-memory FSM of the raw-raft baseline.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) interface{}         { return f.n.Add(1) }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not supported") }
func (f *countFSM) Restore(io.ReadCloser) error         { return nil }

// BenchmarkRawRaftApply is the baseline: raft.Apply of one command per
// entry on 3 nodes with the same TLS transport and raft-boltdb log store,
// but an in-memory FSM and no group commit.
func BenchmarkRawRaftApply(b *testing.B) {
	ca := newTestCA(b, "raw-ca")
	type node struct {
		r   *raft.Raft
		mux *mux
	}
	var nodes []node
	var servers []raft.Server
	for i := range 3 {
		id := fmt.Sprintf("raw%d", i)
		server, client := ca.nodeTLS(b, id)
		server.MinVersion, client.MinVersion = tls13, tls13
		m, err := newMux("127.0.0.1:0", "", server, client, nil, hclog.NewNullLogger())
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		bs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"),
			BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}})
		if err != nil {
			b.Fatal(err)
		}
		trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: m.raftL, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(id)
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		rc.BatchApplyCh = true
		rc.Logger = hclog.NewNullLogger()
		r, err := raft.NewRaft(rc, &countFSM{}, bs, bs, raft.NewDiscardSnapshotStore(), trans)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = r.Shutdown().Error()
			_ = trans.Close()
			m.close()
			_ = bs.Close()
		})
		nodes = append(nodes, node{r: r, mux: m})
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(m.advertise.String())})
	}
	if err := nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		b.Fatal(err)
	}
	var leader *raft.Raft
	for deadline := time.Now().Add(10 * time.Second); leader == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader = n.r
			}
		}
	}
	if leader == nil {
		b.Fatal("no leader")
	}
	payload := bytes.Repeat([]byte{1}, 80)
	for _, conc := range []int{1, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			runConcurrent(b, conc, func(int) error { return leader.Apply(payload, 10*time.Second).Error() })
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

const tls13 = 0x0304

// BenchmarkStatePutIfAbsent measures the state machine alone: entries of
// 256 put-if-absent commands applied to the overlay, and a state commit
// (one fsynced bbolt transaction) of every defaultStateCommitKeys commands,
// both on the benchmark's goroutine so that the time is their whole cost;
// into an empty state DB or one already holding 1M keys, with random
// 16-byte keys or keys clustered by an 8-byte sequence prefix.
func BenchmarkStatePutIfAbsent(b *testing.B) {
	const batch = 256
	const prefill = 1_000_000
	value := bytes.Repeat([]byte{7}, 100)
	for _, tc := range []struct {
		name     string
		prefill  int
		seqFirst bool
	}{
		{"empty/random", 0, false},
		{"1M/random", prefill, false},
		{"empty/clustered", 0, true},
		{"1M/clustered", prefill, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// The background committer never fires: the loop commits.
			f, _ := newHeldFSM(b, filepath.Join(b.TempDir(), "state.db"), 1<<30)
			var seq uint64
			mkKey := func() []byte {
				k := make([]byte, 16)
				_, _ = rand.Read(k)
				if tc.seqFirst {
					seq++
					binary.BigEndian.PutUint64(k, seq)
				}
				return k
			}
			if tc.prefill > 0 {
				prefillState(b, f, tc.prefill, mkKey, value)
			}
			idx := f.applied.Load()
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				cmds := make([]*raftpb.Command, n)
				for i := range cmds {
					cmds[i] = commandToProto([]Op{PutIfAbsent("tokens", mkKey(), value)})
				}
				data, _ := encodeEntry(cmds)
				idx++
				rs := f.ApplyBatch([]*raft.Log{{Index: idx, Type: raft.LogCommand, Data: data}})
				if r, ok := rs[0].([]*raftpb.Result); !ok || len(r) != n {
					b.Fatalf("apply: %v", rs[0])
				}
				if (done+n)%defaultStateCommitKeys < n || done+n >= b.N {
					if err := f.commitState(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// prefillState loads n keys in sorted order with big transactions (fast),
// at bbolt's default fill factor.
func prefillState(b *testing.B, f *fsm, n int, mkKey func() []byte, value []byte) {
	b.Helper()
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = mkKey()
	}
	slices.SortFunc(keys, bytes.Compare)
	for start := 0; start < n; start += 100_000 {
		err := f.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(userBucketName("tokens"))
			if err != nil {
				return err
			}
			for _, k := range keys[start:min(start+100_000, n)] {
				if err := bk.Put(k, value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
