module github.com/skeinhq/skein/bench

go 1.26

require github.com/skeinhq/skein v0.0.0

replace github.com/skeinhq/skein => ../
