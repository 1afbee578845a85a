//! Input files: `.npy` and raw files that are not what they claim, and
//! files that must be checked before they are read.

mod support;

use support::*;

#[test]
fn bad_files() {
    let s = Scratch::new("bad-files");
    let missing = s.path().join("missing.npy");
    bad(
        &["dist", "--logits", missing.to_str().unwrap()],
        "missing.npy",
    );
    bad(
        &["dist", "--logits", s.path().to_str().unwrap()],
        "directory",
    );
    bad(&["dist", "--logits", ""], "--logits");
    let empty = s.file("empty.bin", b"");
    bad(&["dist", "--logits", &empty], "--vocab");
    bad(&["dist", "--logits", &empty, "--vocab", "4"], "empty");
    let raw = s.file("l.bin", &f32_bytes(&[1.0, 2.0, 3.0]));
    bad(&["sample", "--logits", &raw], "--vocab");
    bad(&["sample", "--logits", &raw, "--vocab", "2"], "multiple");
    bad(&["sample", "--logits", &raw, "--vocab", "0"], "--vocab");
    bad(
        &[
            "sample",
            "--logits",
            &raw,
            "--vocab",
            "18446744073709551615",
        ],
        "--vocab",
    );
    let npy = s.file("l.npy", &npy_f32_vec(&ln_1234()));
    bad(&["dist", "--logits", &npy, "--vocab", "3"], "--vocab");
}

#[test]
fn bad_npy_files() {
    let s = Scratch::new("bad-npy");
    let d = f32_bytes(&ln_1234());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("good", npy_with(1, "<f4", &[4], false, &d), ""),
        ("f8", npy_with(1, "<f8", &[2], false, &d), "'<f8'"),
        ("i4", npy_with(1, "<i4", &[4], false, &d), "'<i4'"),
        ("bf16", npy_with(1, "<V2", &[8], false, &d), "'<V2'"),
        ("be", npy_with(1, ">f4", &[4], false, &d), "big-endian"),
        ("be16", npy_with(1, ">f2", &[8], false, &d), "'>f2'"),
        (
            "fortran",
            npy_with(1, "<f4", &[2, 2], true, &d),
            "fortran_order",
        ),
        ("3d", npy_with(1, "<f4", &[1, 2, 2], false, &d), "shape"),
        ("scalar", npy_with(1, "<f4", &[], false, &d[..4]), "shape"),
        ("zero", npy_with(1, "<f4", &[0, 4], false, &[]), "shape"),
        (
            "short",
            npy_with(1, "<f4", &[5], false, &d),
            "needs 20 bytes",
        ),
        (
            "long",
            npy_with(1, "<f4", &[3], false, &d),
            "needs 12 bytes",
        ),
        (
            "huge",
            // (npyz's writer itself overflows on this shape.)
            npy_raw_header(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                &d,
            ),
            "shape",
        ),
        (
            "negative",
            npy_raw_header(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }",
                &d,
            ),
            "dimension",
        ),
        (
            "version",
            npy_with(9, "<f4", &[4], false, &d),
            "version 9.0",
        ),
        (
            "structured",
            npy_raw_header(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }",
                &d,
            ),
            "dtype",
        ),
        (
            "noshape",
            npy_raw_header(1, "{'descr': '<f4', 'fortran_order': False}", &d),
            "shape",
        ),
        ("garbage", npy_raw_header(1, "hello world", &d), "header"),
        (
            "unclosed",
            npy_raw_header(1, "{'descr': '<f4'", &d),
            "header",
        ),
        (
            "nesting",
            npy_raw_header(1, &"(".repeat(5000), &d),
            "header",
        ),
        ("magic-only", b"\x93NUMPY".to_vec(), "truncated"),
        ("no-len", b"\x93NUMPY\x01\x00".to_vec(), "truncated"),
        (
            "len-past-end",
            [&b"\x93NUMPY\x02\x00"[..], &u32::MAX.to_le_bytes(), b"{}"].concat(),
            "header",
        ),
        (
            "binary-header",
            [&b"\x93NUMPY\x01\x00\x04\x00"[..], &[0xff, 0xfe, 0x00, 0x80]].concat(),
            "header",
        ),
    ];
    for (name, bytes, needle) in cases {
        let f = s.file(&format!("{name}.npy"), &bytes);
        if needle.is_empty() {
            // The control case: a good file really is accepted.
            let r = wgsample(&["dist", "--logits", &f]);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            continue;
        }
        bad(&["dist", "--logits", &f], needle);
        bad(&["sample", "--logits", &f], needle);
    }
    // Every truncation of a good file is a clean error.
    let good = npy_with(2, "<f4", &[4], false, &d);
    for cut in 0..good.len() {
        let f = s.file("cut.npy", &good[..cut]);
        let r = wgsample(&["dist", "--logits", &f]);
        assert_eq!(r.code, Some(2), "cut at {cut}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("error: ") && r.stderr.matches('\n').count() == 1,
            "cut at {cut}: {:?}",
            r.stderr
        );
    }
}

#[test]
fn files_are_checked_before_they_are_read() {
    let s = Scratch::new("file-checks");
    // Not regular files: refused before anything is read (or opened).
    for args in [
        &["dist", "--logits", "/dev/zero"][..],
        &["sample", "--logits", "/dev/zero", "--vocab", "4"],
        &["generate", "--bigram", "/dev/zero", "--start", "0"],
        &[
            "beam",
            "--bigram",
            "/dev/zero",
            "--start",
            "0",
            "--beams",
            "1",
        ],
    ] {
        bad_limited(
            args,
            "/dev/zero: it is a character device, not a regular file",
        );
    }
    let fifo = s.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.to_str().unwrap();
    bad_limited(&["dist", "--logits", fifo], "FIFO");
    bad_limited(&["generate", "--bigram", fifo, "--start", "0"], "FIFO");
    bad_limited(
        &["dist", "--logits", s.path().to_str().unwrap()],
        "directory",
    );

    // A 3 GiB sparse file whose header says [4]: refused from its length,
    // without reading it (the run is limited to 1 GiB of address space).
    let d = f32_bytes(&ln_1234());
    let small = npy_with(1, "<f4", &[4], false, &d);
    let header_len = (small.len() - d.len()) as u64;
    let sparse = s.file("sparse.npy", &small);
    let big = 3u64 << 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    let after_header = big - header_len;
    bad_limited(
        &["dist", "--logits", &sparse],
        &format!("needs 16 bytes of data but the file has {after_header} bytes after the header"),
    );
    bad_limited(
        &["sample", "--logits", &sparse, "--vocab", "4"],
        "needs 16 bytes",
    );
    // The same for a bigram table.
    let table = s.file("sparse-b.npy", &npy_with(1, "<f4", &[2, 2], false, &d));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    bad_limited(
        &["generate", "--bigram", &table, "--start", "0"],
        "needs 16 bytes",
    );
    // A raw f32 file's length is checked from its metadata: 3 GiB is not a
    // multiple of 4 * 5.
    let raw = s.file("sparse.bin", &d);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&raw)
        .and_then(|f| f.set_len(big))
        .expect("make a sparse file");
    bad_limited(
        &["dist", "--logits", &raw, "--vocab", "5"],
        "not a multiple",
    );

    // Too long by one byte, and too short by one byte.
    let mut long = npy_with(1, "<f4", &[4], false, &d);
    long.push(0);
    let long = s.file("long.npy", &long);
    bad(
        &["dist", "--logits", &long],
        "file has 17 bytes after the header",
    );
    let short = npy_with(1, "<f4", &[4], false, &d[..15]);
    let short = s.file("short.npy", &short);
    bad(
        &["dist", "--logits", &short],
        "file has 15 bytes after the header",
    );
    // The exact size is read.
    let good = s.file("good.npy", &npy_with(1, "<f4", &[4], false, &d));
    ok_json(&["dist", "--logits", &good]);
}
