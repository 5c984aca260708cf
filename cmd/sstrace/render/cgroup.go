package render

import (
	"sstrace/snapshot/procfs"

	"bufio"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// CgroupPaths turns cgroup v2 ids (INET_DIAG_CGROUP_ID) into the paths ss
// prints as cgroup:PATH, the way iproute2's cg_id_to_path does: on first use
// it walks the first cgroup2 mount listed in /proc/self/mounts (staying on
// that file system) and maps each directory's file handle, the 64-bit kernfs
// id that is the cgroup id, to its path below the mount ("/" for the root).
// An id missing from the map is looked up with open_by_handle_at (a cgroup
// created since the walk); one that still cannot be found prints as
// "unreachable:%x". It is safe for concurrent use.
type CgroupPaths struct {
	once  sync.Once
	mnt   string // "" until init: then the mount point, or "" if none
	at    string // the mount point to use instead of finding one (tests)
	mu    sync.Mutex
	paths map[uint64]string
}

// NewCgroupPaths returns an empty resolver; nothing is read before Path.
func NewCgroupPaths() *CgroupPaths { return &CgroupPaths{} }

// Path returns the path of cgroup id as ss prints it.
func (c *CgroupPaths) Path(id uint64) string {
	c.once.Do(c.init)
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.paths[id]; ok {
		return p
	}
	if p, ok := c.byHandle(id); ok {
		c.paths[id] = p
		return p
	}
	return "unreachable:" + strconv.FormatUint(id, 16)
}

func (c *CgroupPaths) init() {
	c.paths = make(map[uint64]string)
	c.mnt = c.at
	if c.mnt == "" {
		c.mnt = findCgroup2Mount()
	}
	if c.mnt == "" {
		return
	}
	var root unix.Stat_t
	if err := unix.Stat(c.mnt, &root); err != nil {
		return
	}
	c.walk(c.mnt, root.Dev)
}

// walk maps dir and the directories below it that are on device dev
// (nftw's FTW_MOUNT).
func (c *CgroupPaths) walk(dir string, dev uint64) {
	id, ok := cgroupID(dir)
	if !ok {
		return
	}
	rel := dir[len(c.mnt):]
	if rel == "" {
		rel = "/"
	}
	if _, dup := c.paths[id]; !dup {
		c.paths[id] = rel
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if unix.Lstat(sub, &st) != nil || st.Dev != dev {
			continue
		}
		c.walk(sub, dev)
	}
}

// cgroupID is iproute2's get_cgroup2_id: the 8-byte file handle of a
// cgroupfs directory. Should the file system refuse handles, the inode
// number (the same kernfs id on 64-bit kernels) stands in.
func cgroupID(path string) (uint64, bool) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err == nil {
		if b := h.Bytes(); len(b) == 8 {
			return binary.NativeEndian.Uint64(b), true
		}
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0, false
	}
	return st.Ino, true
}

// byHandle is iproute2's get_cgroup2_path: open the cgroup by its handle
// (FILEID_INO32_GEN carrying the id) and read back its path.
func (c *CgroupPaths) byHandle(id uint64) (string, bool) {
	if c.mnt == "" || id == 0 {
		return "", false
	}
	mfd, err := unix.Open(c.mnt, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(mfd)
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], id)
	const fileIDIno32Gen = 1
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(fileIDIno32Gen, b[:]), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !strings.HasPrefix(link, c.mnt) {
		return "", false
	}
	return link[len(c.mnt):], true
}

// findCgroup2Mount returns the mount point of the first cgroup2 file system
// in /proc/self/mounts, "" if there is none.
func findCgroup2Mount() string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return procfs.UnescapeMount(fields[1])
		}
	}
	return ""
}
