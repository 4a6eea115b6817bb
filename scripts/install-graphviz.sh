#!/bin/sh
# Graphviz's `dot` program draws tensorgrad's graphs. It is a system package that pip
# cannot install; this installs it where it can and never fails: without `dot`, drawing
# saves the DOT source instead of a picture, and everything else works.
command -v dot >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null && exit 0
elif command -v brew >/dev/null 2>&1; then
    brew install graphviz && exit 0
fi
echo "note: could not install Graphviz (dot); graphs will be saved as DOT source." >&2
echo "      install it yourself: apt-get install graphviz | brew install graphviz | conda install -c conda-forge graphviz" >&2
exit 0
