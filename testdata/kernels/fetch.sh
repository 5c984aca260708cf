#!/usr/bin/env bash
# fetch.sh CACHE LINE...: download and unpack Debian's newest cloud kernel of
# each LINE (5.10 6.1 6.12 sid) into CACHE, and print one line per kernel:
#   LINE PACKAGE_VERSION VMLINUZ MODULES_DIR
# Debian's archive is read through a private apt configuration under
# CACHE/apt: the machine's own sources and lists stay untouched. The lists
# are refreshed when older than a day (KERNELS_APT_UPDATE=1 forces it), so
# that reruns are fast and still pick up a new kernel ABI within a day.
# Package names change as Debian updates: the newest linux-image-*-cloud-amd64
# of the suite is chosen at run time; where the suite splits the image into
# linux-binary-* + linux-modules-* (sid since 7.x), those two are fetched.
set -euo pipefail

cache=$1
shift

suite_of() {
	case $1 in
	5.10) echo bullseye ;;
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	sid) echo sid ;;
	*) echo "fetch.sh: unknown kernel line $1 (want 5.10, 6.1, 6.12 or sid)" >&2; return 1 ;;
	esac
}

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/debs" "$cache/unpacked"
: >"$apt_dir/sources.list.new"
for s in bullseye bookworm trixie sid; do
	echo "deb http://deb.debian.org/debian $s main" >>"$apt_dir/sources.list.new"
done
mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
APT=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
	-o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
	-o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
	-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
	-o APT::Sandbox::User=root) # the cache is root's, not _apt's

stamp=$apt_dir/updated
if [[ ${KERNELS_APT_UPDATE:-0} == 1 || ! -e $stamp || -z $(find "$stamp" -mmin -1440) ]]; then
	echo "fetch: apt-get update (Debian bullseye bookworm trixie sid, private lists in $apt_dir)" >&2
	apt-get "${APT[@]}" update >&2
	touch "$stamp"
fi

# packages SUITE: "NAME VERSION" of every kernel package in the suite's
# Packages index (read directly: apt-cache would load all four suites).
packages() {
	local f
	f=$(apt-get "${APT[@]}" indextargets --format '$(FILENAME)' "Codename: $1" 'Created-By: Packages' 'Architecture: amd64')
	[[ -n $f ]] || { echo "fetch: no Packages index for $1" >&2; return 1; }
	# shellcheck disable=SC2086
	/usr/lib/apt/apt-helper cat-file $f | awk '/^Package: linux-/ { p = $2 } /^Version: / && p { print p, $2; p = "" } /^$/ { p = "" }'
}

# download SUITE PKG VERSION: the .deb into CACHE/debs; prints its path.
download() {
	local suite=$1 pkg=$2 ver=$3 deb
	[[ -n $ver ]] || { echo "fetch: $pkg not in $suite" >&2; return 1; }
	deb=$cache/debs/${pkg}_${ver//:/%3a}_amd64.deb
	if [[ ! -s $deb ]]; then
		echo "fetch: downloading $pkg $ver ($suite)" >&2
		(cd "$cache/debs" && apt-get "${APT[@]}" download "$pkg=$ver" >&2)
	fi
	[[ -s $deb ]] || { echo "fetch: $deb missing after download" >&2; return 1; }
	echo "$deb"
}

for line in "$@"; do
	suite=$(suite_of "$line")
	names=$(packages "$suite")
	abi=$(cut -d' ' -f1 <<<"$names" | grep -E '^linux-image-[0-9][^ ]*-cloud-amd64$' |
		sed -e 's/^linux-image-//' -e 's/-cloud-amd64$//' | sort -V | tail -1)
	[[ -n $abi ]] || { echo "fetch: no linux-image-*-cloud-amd64 in $suite" >&2; exit 1; }
	if grep -q "^linux-binary-$abi-cloud-amd64 " <<<"$names"; then
		pkgs="linux-binary-$abi-cloud-amd64 linux-modules-$abi-cloud-amd64"
	else
		pkgs="linux-image-$abi-cloud-amd64"
	fi
	debs=()
	for p in $pkgs; do debs+=("$(download "$suite" "$p" "$(awk -v p="$p" '$1 == p { print $2 }' <<<"$names" | sort -V | tail -1)")"); done
	dir=$cache/unpacked/$(basename "${debs[0]}" .deb)
	if [[ ! -e $dir/.unpacked ]]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		for d in "${debs[@]}"; do dpkg-deb -x "$d" "$dir"; done
		touch "$dir/.unpacked"
	fi
	# The image is /boot/vmlinuz-ABI up to 6.12, MODULES_DIR/vmlinuz in the split packages.
	moddir=$( (ls -d "$dir"/lib/modules/* "$dir"/usr/lib/modules/* 2>/dev/null || true) | head -1)
	vmlinuz=$( (ls "$dir"/boot/vmlinuz-* "$moddir/vmlinuz" 2>/dev/null || true) | head -1)
	[[ -n $vmlinuz && -n $moddir ]] || { echo "fetch: no vmlinuz or modules in $dir" >&2; exit 1; }
	# The package version is the kernel's upstream version (5.10.223-1).
	version=$(dpkg-deb -f "${debs[0]}" Version)
	echo "$line $version $vmlinuz $moddir"
done
