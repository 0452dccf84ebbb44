package ldcache

import (
	"bytes"
	"encoding/binary"
)

// ldconfig's library type flags (glibc elf/ldconfig.h, sysdeps/generic/ldconfig.h).
const (
	flagELF         = 0x0001
	flagELFLibc5    = 0x0002
	flagELFLibc6    = 0x0003
	flagIA64Lib64   = 0x0200
	flagX8664Lib64  = 0x0300
	flagX8664Libx32 = 0x0800
	flagARMLibHF    = 0x0900
	flagAArch64     = 0x0a00
	flagARMLibSF    = 0x0b00
)

const (
	emARM    = 40
	em386    = 3
	emX8664  = 62
	etDyn    = 3
	ptLoad   = 1
	ptDyn    = 2
	ptInterp = 3
	ptNote   = 4
	dtNull   = 0
	dtNeeded = 1
	dtStrtab = 5
	dtSoname = 14

	efARMEABIVer5  = 0x05000000
	efARMFloatHard = 0x00000400
	efARMFloatSoft = 0x00000200
)

// elfInfo is what ldconfig's process_file learns from one file.
type elfInfo struct {
	ok        bool // a library ldconfig accepts
	flag      int32
	osversion uint32
	soname    string
	hasSoname bool
}

// le reads little-endian words with bounds checks: ldconfig reads the
// file with the host's (little-endian for every supported architecture)
// byte order, whatever the ELF header says.
type le []byte

func (b le) u16(off uint64) (uint16, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(b[off:]), true
}

func (b le) u32(off uint64) (uint32, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[off:]), true
}

func (b le) u64(off uint64) (uint64, bool) {
	if off > uint64(len(b)) || uint64(len(b))-off < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[off:]), true
}

// word reads an ElfW(Addr)/ElfW(Xword) of the given class.
func (b le) word(off uint64, is64 bool) (uint64, bool) {
	if is64 {
		return b.u64(off)
	}
	v, ok := b.u32(off)
	return uint64(v), ok
}

// cstr reads a NUL-terminated string starting at off; ok is false when
// off is outside the file or the string runs off its end.
func (b le) cstr(off uint64) (string, bool) {
	if off >= uint64(len(b)) {
		return "", false
	}
	i := bytes.IndexByte(b[off:], 0)
	if i < 0 {
		return "", false
	}
	return string(b[off : off+uint64(i)]), true
}

// processFile mirrors readlib.c process_file and the architecture's
// readelflib.c process_elf_file for the ldconfig of arch a.
func processFile(data []byte, a *archInfo, p *profile) elfInfo {
	// ldconfig skips files smaller than an ElfW(Ehdr) of its own (64-bit)
	// class, and anything without the ELF magic.
	if len(data) < 64 || !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return elfInfo{}
	}
	b := le(data)
	class := data[4]
	machine, _ := b.u16(18)
	var info elfInfo
	switch a.name {
	case "amd64":
		var fileFlag int32
		switch {
		case machine == emX8664 && class == 2:
			fileFlag = flagX8664Lib64 | flagELFLibc6
		case machine == emX8664:
			fileFlag = flagX8664Libx32 | flagELFLibc6
		case machine == em386 && class == 1:
		default:
			return elfInfo{}
		}
		info = processELFClass(b, class == 1, a, p)
		if info.ok && fileFlag != 0 {
			info.flag = fileFlag
		}
	case "arm64":
		if class == 1 {
			info = processELFClass(b, true, a, p)
			eflags, _ := b.u32(36)
			if info.ok && eflags&0xff000000 == efARMEABIVer5 {
				switch {
				case eflags&efARMFloatHard != 0:
					info.flag = flagARMLibHF | flagELFLibc6
				case eflags&efARMFloatSoft != 0:
					info.flag = flagARMLibSF | flagELFLibc6
				default:
					info.flag = flagELFLibc6
				}
			}
		} else {
			info = processELFClass(b, false, a, p)
			if info.ok {
				info.flag = flagAArch64 | flagELFLibc6
			}
		}
	}
	return info
}

// processELFClass mirrors the generic elf/readelflib.c, compiled for one
// ELF class.
func processELFClass(b le, is32 bool, a *archInfo, p *profile) elfInfo {
	is64 := !is32
	want := byte(2)
	if is32 {
		want = 1
	}
	if b[4] != want {
		return elfInfo{}
	}
	if t, _ := b.u16(16); t != etDyn {
		return elfInfo{}
	}
	var phoff uint64
	var phnum uint16
	var phsize uint64
	if is64 {
		phoff, _ = b.u64(32)
		phnum, _ = b.u16(56)
		phsize = 56
	} else {
		v, _ := b.u32(28)
		phoff = uint64(v)
		phnum, _ = b.u16(44)
		phsize = 32
	}
	if phoff > uint64(len(b)) {
		return elfInfo{}
	}
	info := elfInfo{flag: flagELF}
	loadaddr := ^uint64(0)
	var dynAddr uint32 // ldconfig keeps the offset in an unsigned int
	var dynSize uint64
	for i := uint64(0); i < uint64(phnum); i++ {
		seg := phoff + i*phsize
		if seg > uint64(len(b)) || uint64(len(b))-seg < phsize {
			return elfInfo{}
		}
		ptype, _ := b.u32(seg)
		var off, vaddr, filesz, align uint64
		if is64 {
			off, _ = b.u64(seg + 8)
			vaddr, _ = b.u64(seg + 16)
			filesz, _ = b.u64(seg + 32)
			align, _ = b.u64(seg + 48)
		} else {
			off, _ = b.word(seg+4, false)
			vaddr, _ = b.word(seg+8, false)
			filesz, _ = b.word(seg+16, false)
			align, _ = b.word(seg+28, false)
		}
		switch ptype {
		case ptLoad:
			if loadaddr == ^uint64(0) {
				loadaddr = vaddr - off
				if is32 {
					loadaddr &= 0xffffffff
				}
			}
		case ptDyn:
			dynAddr = uint32(off)
			dynSize = filesz
		case ptInterp:
			if off > uint64(len(b)) {
				return elfInfo{}
			}
			interp, _ := b.cstr(off)
			for _, k := range a.interpreters {
				if interp == k {
					info.flag = flagELFLibc6
					break
				}
			}
		case ptNote:
			if p.osversion && info.osversion == 0 && filesz >= 32 && align >= 4 {
				info.osversion = abiNote(b, off, filesz, align)
			}
		}
	}
	if loadaddr == ^uint64(0) {
		loadaddr = 0
	}
	if dynSize == 0 {
		return elfInfo{}
	}
	dynEnt := uint64(16)
	if is32 {
		dynEnt = 8
	}
	tag := func(off uint64) (uint64, uint64, bool) {
		t, ok1 := b.word(off, is64)
		v, ok2 := b.word(off+dynEnt/2, is64)
		if is32 {
			// d_tag is a signed Elf32_Sword; DT_NULL and the tags used
			// here are small positives either way.
			t &= 0xffffffff
		}
		return t, v, ok1 && ok2
	}
	strtab := uint64(0)
	found := false
	for off := uint64(dynAddr); ; off += dynEnt {
		t, v, ok := tag(off)
		if !ok {
			return elfInfo{}
		}
		if t == dtNull {
			break
		}
		if t == dtStrtab {
			strtab = v - loadaddr
			if is32 {
				strtab &= 0xffffffff
			}
			if strtab > uint64(len(b)) {
				return elfInfo{}
			}
			found = true
			break
		}
	}
	if !found {
		return elfInfo{}
	}
	for off := uint64(dynAddr); ; off += dynEnt {
		t, v, ok := tag(off)
		if !ok {
			return elfInfo{}
		}
		if t == dtNull {
			break
		}
		if t != dtNeeded && t != dtSoname {
			continue
		}
		name, ok := b.cstr(strtab + v)
		if !ok {
			return elfInfo{}
		}
		if t == dtNeeded {
			if info.flag == flagELF {
				for _, k := range a.knownLibs {
					if name == k {
						info.flag = flagELFLibc6
						break
					}
				}
			}
		} else {
			info.soname, info.hasSoname = name, true
		}
		if info.hasSoname && info.flag != flagELF {
			break
		}
	}
	info.ok = true
	return info
}

// abiNote returns the NT_GNU_ABI_TAG version of a PT_NOTE segment, as
// glibc 2.31's ldconfig records it (osversion), or 0.
func abiNote(b le, off, size, align uint64) uint32 {
	if align < 4 {
		align = 4
	} else if align != 4 && align != 8 {
		return 0
	}
	for {
		n0, ok0 := b.u32(off)
		n1, ok1 := b.u32(off + 4)
		n2, ok2 := b.u32(off + 8)
		if !ok0 || !ok1 || !ok2 || off+16 > uint64(len(b)) {
			return 0
		}
		if n0 == 4 && n1 == 16 && n2 == 1 && bytes.Equal(b[off+12:off+16], []byte("GNU\x00")) {
			break
		}
		// ELF_NOTE_NEXT_OFFSET: header and name aligned, then the descriptor.
		next := roundUp(roundUp(12+uint64(n0), align)+uint64(n1), align)
		if next == 0 || size-32 < next {
			return 0
		}
		size -= next
		off += next
	}
	var w [4]uint32
	for i := range w {
		v, ok := b.u32(off + 16 + 4*uint64(i))
		if !ok {
			return 0
		}
		w[i] = v
	}
	return w[0]<<24 | (w[1]&0xff)<<16 | (w[2]&0xff)<<8 | w[3]&0xff
}

func roundUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
