#!/bin/sh
# Regenerates golden/*.txt (stdout), golden/*.err (stderr) and golden/*.code
# (exit status) by running the real eliot-tree on the cases of
# golden/MANIFEST.tsv. Run from tree/testdata with ELIOT_TREE naming an
# eliot-tree 24.0.0 command (it needs python3-eliot 1.13, python3-jmespath,
# python3-iso8601, python3-toolz, python3-six and python3-colored).
set -u
: "${ELIOT_TREE:?set ELIOT_TREE to the eliot-tree command}"
grep -v '^#' golden/MANIFEST.tsv | while IFS='	' read -r name env args order; do
	set --
	for a in $args; do set -- "$@" "$(printf '%s' "$a" | sed 's/%20/ /g')"; done
	if [ "$env" != "-" ]; then
		env "$env" HOME=/nonexistent "$ELIOT_TREE" "$@" >"golden/$name.txt" 2>"golden/$name.err"
	else
		env HOME=/nonexistent "$ELIOT_TREE" "$@" >"golden/$name.txt" 2>"golden/$name.err"
	fi
	echo $? >"golden/$name.code"
	# Keep eliot-tree's report, not the Python traceback after it (which
	# names files of the machine it ran on).
	sed -i '/^Traceback (most recent call last):/,$d' "golden/$name.err"
	[ -s "golden/$name.err" ] || rm -f "golden/$name.err"
done
