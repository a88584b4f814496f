package ring

import (
	"slices"
	"testing"
)

func TestBuffer(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		push   []int
		newest int
		want   []int
	}{
		{"empty", 3, nil, 0, []int{}},
		{"partial", 3, []int{1, 2}, 0, []int{2, 1}},
		{"exactly full", 3, []int{1, 2, 3}, 0, []int{3, 2, 1}},
		{"wrapped", 3, []int{1, 2, 3, 4, 5}, 0, []int{5, 4, 3}},
		{"limited", 3, []int{1, 2, 3, 4, 5}, 2, []int{5, 4}},
		{"limit above len", 5, []int{1, 2}, 4, []int{2, 1}},
		{"size below one", 0, []int{1, 2}, 0, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New[int](tt.size)
			for _, v := range tt.push {
				b.Push(v)
			}
			if got := b.Newest(tt.newest); !slices.Equal(got, tt.want) {
				t.Errorf("Newest(%d) = %v, want %v", tt.newest, got, tt.want)
			}
			if got, want := b.Len(), min(len(tt.push), max(tt.size, 1)); got != want {
				t.Errorf("Len() = %d, want %d", got, want)
			}
		})
	}
}

func TestUpdateAt(t *testing.T) {
	b := New[int](3)
	var seqs []uint64
	for _, v := range []int{1, 2, 1, 4} {
		seqs = append(seqs, b.Push(v))
	}
	if !slices.Equal(seqs, []uint64{0, 1, 2, 3}) {
		t.Fatalf("Push returned %v, want 0, 1, 2, 3", seqs)
	}
	if !b.UpdateAt(2, func(v *int) { *v = 10 }) {
		t.Fatal("UpdateAt(2) found nothing, want the second 1")
	}
	if got, want := b.Newest(0), []int{4, 10, 2}; !slices.Equal(got, want) {
		t.Errorf("after UpdateAt: %v, want %v", got, want)
	}
	for _, seq := range []uint64{0, 4, 99} { // dropped, not yet pushed
		if b.UpdateAt(seq, func(v *int) { *v = -1 }) {
			t.Errorf("UpdateAt(%d) reported a value", seq)
		}
	}
	if got, want := b.Newest(0), []int{4, 10, 2}; !slices.Equal(got, want) {
		t.Errorf("after UpdateAt of missing values: %v, want %v", got, want)
	}
}
