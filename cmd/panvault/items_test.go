package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// sendInBatches chunks the items, resends only those that failed with
// UNAVAILABLE (for at most maxItemRounds rounds), keeps every other
// item's error, and stops at a failed call or a short answer.
func TestSendInBatches(t *testing.T) {
	unavailable := &pb.ItemError{Code: int32(codes.Unavailable), Message: "no leader"}
	invalid := &pb.ItemError{Code: int32(codes.InvalidArgument), Message: "bad"}
	var chunks [][]int
	tries := map[int]int{}
	got := map[int]string{}
	errs, err := sendInBatches(5, 2, func(chunk []int) ([]*pb.RetokenizeResult, error) {
		chunks = append(chunks, slices.Clone(chunk))
		out := make([]*pb.RetokenizeResult, len(chunk))
		for j, i := range chunk {
			tries[i]++
			switch {
			case i == 1: // always invalid: never resent
				out[j] = &pb.RetokenizeResult{Outcome: &pb.RetokenizeResult_Error{Error: invalid}}
			case i == 3 && tries[i] < 3, i == 4: // unavailable twice; always
				out[j] = &pb.RetokenizeResult{Outcome: &pb.RetokenizeResult_Error{Error: unavailable}}
			default:
				out[j] = &pb.RetokenizeResult{Outcome: &pb.RetokenizeResult_Success{Success: &pb.RetokenizeSuccess{Token: fmt.Sprint("t", i)}}}
			}
		}
		return out, nil
	}, func(i int, s *pb.RetokenizeSuccess) { got[i] = s.GetToken() })
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{0, 1}, {2, 3}, {4}, {3, 4}, {3, 4}}; !slices.EqualFunc(chunks[:len(want)], want, slices.Equal) {
		t.Errorf("chunks sent %v, want %v first", chunks, want)
	}
	if tries[0] != 1 || tries[1] != 1 || tries[3] != 3 || tries[4] != maxItemRounds {
		t.Errorf("tries %v: want items 0 and 1 once, 3 three times, 4 %d times", tries, maxItemRounds)
	}
	if got[0] != "t0" || got[2] != "t2" || got[3] != "t3" || len(got) != 3 {
		t.Errorf("successes %v", got)
	}
	if errs[0] != nil || errs[2] != nil || errs[3] != nil {
		t.Errorf("an item that succeeded keeps an error: %v %v %v", errs[0], errs[2], errs[3])
	}
	if errs[1] == nil || errs[1].Code != "INVALID_ARGUMENT" || errs[4] == nil || errs[4].Code != "UNAVAILABLE" {
		t.Errorf("failed items' errors: %v %v", errs[1], errs[4])
	}

	callErr := errors.New("call failed")
	if _, err := sendInBatches(3, 2, func([]int) ([]*pb.RetokenizeResult, error) { return nil, callErr },
		func(int, *pb.RetokenizeSuccess) {}); !errors.Is(err, callErr) {
		t.Errorf("a failed call: %v", err)
	}
	if _, err := sendInBatches(3, 2, func([]int) ([]*pb.RetokenizeResult, error) { return []*pb.RetokenizeResult{{}}, nil },
		func(int, *pb.RetokenizeSuccess) {}); err == nil || !strings.Contains(err.Error(), "1 results for 2 items") {
		t.Errorf("a short answer: %v", err)
	}
}
