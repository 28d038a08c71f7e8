//! The walker's tests: real scikit-learn fixtures, every opcode, and the hostile inputs.

use super::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sklearn/");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
}

fn scan_bytes(b: &[u8]) -> Result<PickleInfo, PickleError> {
    scan(b, &PickleLimits::default())
}

const TREE_P3: &[&str] = &[
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "numpy.ndarray",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
];
const TREE_JOBLIB: &[&str] = &[
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "numpy.ndarray",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
];

/// Expected values, copied from expected_globals.json.
/// (file, format, protocol, globals, sklearn_version, arrays)
type Expected = (
    &'static str,
    ModelFormat,
    u8,
    Vec<&'static str>,
    Option<&'static str>,
    u64,
);

fn expected() -> Vec<Expected> {
    let p2: Vec<&str> = std::iter::once("_codecs.encode")
        .chain(TREE_P3.iter().copied())
        .collect();
    vec![
        (
            "evil_reduce.pkl",
            ModelFormat::Pickle { protocol: 4 },
            4,
            vec!["posix.system"],
            None,
            0,
        ),
        (
            "iris_pipeline.joblib",
            ModelFormat::Joblib,
            4,
            vec![
                "joblib.numpy_pickle.NumpyArrayWrapper",
                "numpy._core.multiarray.scalar",
                "numpy.dtype",
                "numpy.ndarray",
                "sklearn.linear_model._logistic.LogisticRegression",
                "sklearn.pipeline.Pipeline",
                "sklearn.preprocessing._data.StandardScaler",
            ],
            Some("1.9.1"),
            7,
        ),
        (
            "iris_tree.joblib",
            ModelFormat::Joblib,
            4,
            TREE_JOBLIB.to_vec(),
            Some("1.9.1"),
            4,
        ),
        (
            "iris_tree_p2.pkl",
            ModelFormat::Pickle { protocol: 2 },
            2,
            p2,
            Some("1.9.1"),
            0,
        ),
        (
            "iris_tree_p3.pkl",
            ModelFormat::Pickle { protocol: 3 },
            3,
            TREE_P3.to_vec(),
            Some("1.9.1"),
            0,
        ),
        (
            "iris_tree_p4.pkl",
            ModelFormat::Pickle { protocol: 4 },
            4,
            TREE_P3.to_vec(),
            Some("1.9.1"),
            0,
        ),
        (
            "iris_tree_p5.pkl",
            ModelFormat::Pickle { protocol: 5 },
            5,
            vec![
                "numpy._core.multiarray.scalar",
                "numpy._core.numeric._frombuffer",
                "numpy.dtype",
                "sklearn.tree._classes.DecisionTreeClassifier",
                "sklearn.tree._tree.Tree",
            ],
            Some("1.9.1"),
            0,
        ),
        (
            "iris_tree_z3.joblib",
            ModelFormat::JoblibZlib,
            4,
            TREE_JOBLIB.to_vec(),
            Some("1.9.1"),
            4,
        ),
    ]
}

#[test]
fn fixtures_match_expected_globals() {
    let json = String::from_utf8(fixture("expected_globals.json")).expect("utf-8 json");
    for (name, format, protocol, globals, version, arrays) in expected() {
        assert!(
            json.contains(&format!("\"{name}\"")),
            "{name} missing from expected_globals.json"
        );
        let info = scan_bytes(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.format, format, "{name} format");
        assert_eq!(info.protocol, protocol, "{name} protocol");
        assert_eq!(info.globals, globals, "{name} globals");
        assert_eq!(
            info.sklearn_version.as_deref(),
            version,
            "{name} sklearn_version"
        );
        assert_eq!(info.arrays, arrays, "{name} arrays");
        assert_eq!(
            sniff(&fixture(name)).name(),
            if format == ModelFormat::Joblib {
                "pickle"
            } else {
                format.name()
            }
        );
    }
}

/// The embedded expectations agree with expected_globals.json (tiny hand parse: the
/// `"globals": [...]` list of each file entry).
#[test]
fn embedded_expectations_agree_with_json() {
    let json = String::from_utf8(fixture("expected_globals.json")).expect("utf-8 json");
    for (name, _, protocol, globals, version, _) in expected() {
        let at = json.find(&format!("\"{name}\": {{")).expect("file entry");
        let entry = &json[at..];
        let entry = &entry[..entry.find("\n  }").expect("entry end")];
        let g = &entry[entry.find("\"globals\": [").expect("globals") + 12..];
        let g = &g[..g.find(']').expect("globals end")];
        let listed: Vec<String> = g
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(listed, globals, "{name}");
        assert!(
            entry.contains(&format!("\"protocol\": {protocol}")),
            "{name} protocol"
        );
        let v = match version {
            Some(v) => format!("\"sklearn_version\": \"{v}\""),
            None => "\"sklearn_version\": null".into(),
        };
        assert!(entry.contains(&v), "{name} version");
    }
}

#[test]
fn evil_reduce_reports_posix_system() {
    let info = scan_bytes(&fixture("evil_reduce.pkl")).expect("scan");
    assert_eq!(info.globals, vec!["posix.system".to_string()]);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for (name, ..) in expected() {
        let data = fixture(name);
        for cut in 0..data.len() {
            assert!(
                scan_bytes(&data[..cut]).is_err(),
                "{name} cut at {cut} scanned fine"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    for name in [
        "iris_tree_p4.pkl",
        "iris_tree.joblib",
        "iris_tree_z3.joblib",
    ] {
        let mut data = fixture(name);
        data.push(b'N');
        assert!(
            matches!(scan_bytes(&data), Err(PickleError::Malformed { .. })),
            "{name}"
        );
    }
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..5000 {
        let len = rng.below(300);
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && data.len() >= 2 {
            data[0] = 0x80;
            data[1] = 2 + (rng.next() % 4) as u8;
        }
        let _ = scan_bytes(&data);
    }
}

#[test]
fn huge_binunicode8_fails_fast_without_allocating() {
    let mut data = vec![0x80, 4, 0x8d];
    data.extend_from_slice(&(1u64 << 62).to_le_bytes());
    data.extend_from_slice(b"abc");
    let t = std::time::Instant::now();
    let err = scan_bytes(&data).expect_err("must fail");
    assert!(
        matches!(
            err,
            PickleError::Limit { .. } | PickleError::Truncated { .. }
        ),
        "{err}"
    );
    // Also with a cap above the claimed size: truncation, not an allocation.
    let limits = PickleLimits {
        max_input_bytes: u64::MAX,
        max_string: usize::MAX,
        ..PickleLimits::default()
    };
    let err = scan(&data[..], &limits).expect_err("must fail");
    assert!(matches!(err, PickleError::Truncated { .. }), "{err}");
    assert!(t.elapsed().as_secs() < 2);
}

#[test]
fn deep_mark_nesting_hits_the_stack_limit() {
    let limits = PickleLimits {
        max_stack: 1000,
        ..PickleLimits::default()
    };
    let mut data = vec![0x80, 4];
    data.extend(std::iter::repeat_n(b'(', 5000));
    let err = scan(&data[..], &limits).expect_err("must fail");
    assert!(
        matches!(
            err,
            PickleError::Limit {
                what: "stack depth",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn stack_global_with_non_string_operands_is_unresolved() {
    // PROTO 4, BININT1 1, BININT1 2, STACK_GLOBAL, STOP
    let info = scan_bytes(&[0x80, 4, b'K', 1, b'K', 2, 0x93, b'.']).expect("scan");
    assert_eq!(info.globals, vec![UNRESOLVED.to_string()]);
    // A module string longer than max_string is unresolved too.
    let mut data = vec![0x80, 4, 0x8d];
    data.extend_from_slice(&2000u64.to_le_bytes());
    data.extend(std::iter::repeat_n(b'a', 2000));
    data.extend_from_slice(&[0x8c, 1, b'x', 0x93, b'.']);
    assert_eq!(
        scan_bytes(&data).expect("scan").globals,
        vec![UNRESOLVED.to_string()]
    );
    // And a module name that is the result of a call.
    let data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93)R\x8c\x06system\x93.";
    let info = scan_bytes(data).expect("scan");
    assert_eq!(
        info.globals,
        vec![UNRESOLVED.to_string(), "builtins.str".to_string()]
    );
}

#[test]
fn memo_resolved_stack_global() {
    // 'os' memoized, then fetched back with BINGET as the module of a STACK_GLOBAL.
    let data = b"\x80\x04\x8c\x02os\x94\x8c\x01x\x94\x93\x94h\x00\x8c\x06system\x93.";
    let info = scan_bytes(data).expect("scan");
    assert_eq!(
        info.globals,
        vec!["os.system".to_string(), "os.x".to_string()]
    );
    // PUT/GET in protocol 0 text form as well.
    let data = b"\x80\x02Vos\np0\n0g0\nVsystem\n\x93.";
    assert_eq!(
        scan_bytes(data).expect("scan").globals,
        vec!["os.system".to_string()]
    );
}

#[test]
fn ext_and_inst_and_persid_are_recorded() {
    let data = b"\x80\x02\x82\x05\x83\x00\x01\x84\xff\xff\xff\xff(ios\nsystem\n0P1\n0N.";
    let info = scan_bytes(data).expect("scan");
    assert_eq!(
        info.globals,
        vec![
            "<ext:-1>",
            "<ext:256>",
            "<ext:5>",
            "<persistent_id>",
            "os.system"
        ]
    );
}

#[test]
fn sklearn_version_via_memo() {
    let data =
        b"\x80\x04}\x94(\x8c\x10_sklearn_version\x94\x8c\x051.2.3\x94u\x8c\x04more\x94h\x01h\x02.";
    let info = scan_bytes(data).expect("scan");
    assert_eq!(info.sklearn_version.as_deref(), Some("1.2.3"));
}

#[test]
fn every_opcode_byte_is_classified() {
    let mut known = 0;
    for b in 0u8..=255 {
        let data = [0x80, 4, b];
        let r = scan_bytes(&data);
        let unknown =
            matches!(r, Err(PickleError::UnknownOpcode { opcode, offset: 2 }) if opcode == b);
        assert_eq!(unknown, op_arg(b).is_none(), "opcode 0x{b:02x}: {r:?}");
        known += usize::from(op_arg(b).is_some());
    }
    assert_eq!(known, 68);
}

#[test]
fn frame_straddling_is_refused() {
    // FRAME of 3 bytes, then SHORT_BINUNICODE of 5 bytes: runs past the frame.
    let mut data = vec![0x80, 4, 0x95];
    data.extend_from_slice(&3u64.to_le_bytes());
    data.extend_from_slice(&[0x8c, 5, b'a', b'b', b'c', b'd', b'e', b'.']);
    assert!(matches!(
        scan_bytes(&data),
        Err(PickleError::Malformed { .. })
    ));
    // A new FRAME in the middle of the current one.
    let mut data = vec![0x80, 4, 0x95];
    data.extend_from_slice(&20u64.to_le_bytes());
    data.push(0x95);
    data.extend_from_slice(&1u64.to_le_bytes());
    data.extend_from_slice(b"N.........");
    assert!(matches!(
        scan_bytes(&data),
        Err(PickleError::Malformed { .. })
    ));
}

// ---- hand-made joblib streams ----

/// `NumpyArrayWrapper` record as joblib 1.6 writes it (protocol 4, no FRAME), for dtype
/// code `code` with state flags `flags`, `shape`, and an optional alignment attribute.
fn wrapper(code: &str, elsize: i32, flags: u8, shape: &[u8], aligned: bool) -> Vec<u8> {
    let dims: Vec<u8> = shape.iter().flat_map(|d| [b'K', *d]).collect();
    wrapper_raw(code, elsize, flags, &dims, aligned)
}

/// Like [`wrapper`], with the shape tuple's items given as raw opcodes.
fn wrapper_raw(code: &str, elsize: i32, flags: u8, dims: &[u8], aligned: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let s = |v: &mut Vec<u8>, x: &str| {
        v.push(0x8c);
        v.push(x.len() as u8);
        v.extend_from_slice(x.as_bytes());
    };
    s(&mut v, "joblib.numpy_pickle");
    s(&mut v, "NumpyArrayWrapper");
    v.extend_from_slice(&[0x93, 0x94, b')', 0x81, 0x94, b'}', 0x94, b'(']);
    s(&mut v, "shape");
    v.push(b'(');
    v.extend_from_slice(dims);
    v.extend_from_slice(&[b't', 0x94]);
    s(&mut v, "dtype");
    s(&mut v, "numpy");
    s(&mut v, "dtype");
    v.push(0x93);
    s(&mut v, code);
    v.extend_from_slice(&[0x89, 0x88, 0x87, b'R', 0x94, b'(', b'K', 3]);
    s(&mut v, "<");
    v.extend_from_slice(b"NNNJ");
    v.extend_from_slice(&elsize.to_le_bytes());
    v.extend_from_slice(&[b'J', 0xff, 0xff, 0xff, 0xff, b'K', flags, b't', 0x94, b'b']);
    if aligned {
        s(&mut v, "numpy_array_alignment_bytes");
        v.extend_from_slice(&[b'K', 16]);
    }
    v.extend_from_slice(b"ub");
    v
}

#[test]
fn joblib_array_is_skipped() {
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper("f8", -1, 0, &[2, 3], true));
    data.push(4);
    data.extend_from_slice(&[0xff; 4]);
    // 6 float64 values whose bytes include things that look like opcodes.
    data.extend(std::iter::repeat_n(b'c', 48));
    data.extend_from_slice(b"a.");
    let info = scan_bytes(&data).expect("scan");
    assert_eq!(info.format, ModelFormat::Joblib);
    assert_eq!(info.arrays, 1);
    assert_eq!(
        info.globals,
        vec!["joblib.numpy_pickle.NumpyArrayWrapper", "numpy.dtype"]
    );
    // Bad padding byte content is refused.
    let mut bad = data.clone();
    let at = bad.len() - 48 - 2 - 2;
    bad[at] = 0;
    assert!(matches!(
        scan_bytes(&bad),
        Err(PickleError::Malformed { .. })
    ));
}

#[test]
fn unaligned_array_data_that_plain_pickle_would_execute_is_refused() {
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper("V16", 16, 0, &[1], false));
    // The 16 "array" bytes are a GLOBAL that plain pickle.load would import.
    let payload = b"cos\nsystem\n0NNNN";
    assert_eq!(payload.len(), 16);
    data.extend_from_slice(payload);
    data.extend_from_slice(b"a.");
    let err = scan_bytes(&data).expect_err("must refuse");
    assert!(matches!(err, PickleError::Malformed { .. }), "{err}");
    // Harmless data (starts with an invalid opcode byte) is fine.
    let mut ok = data[..data.len() - 18].to_vec();
    ok.extend_from_slice(&[0u8; 16]);
    ok.extend_from_slice(b"a.");
    assert_eq!(scan_bytes(&ok).expect("scan").arrays, 1);
}

#[test]
fn only_the_first_array_region_is_checked_for_plain_pickle_load() {
    // First array: aligned, the padding-length byte stops plain pickle.load. The second
    // (unaligned) array's bytes would parse as a GLOBAL, but plain pickle.load is over.
    let mut data = vec![0x80, 4, b']', 0x94, b'('];
    data.extend(wrapper("f8", -1, 0, &[1], true));
    data.push(2);
    data.extend_from_slice(&[0xff, 0xff]);
    data.extend_from_slice(&[0u8; 8]);
    data.extend(wrapper("V16", 16, 0, &[1], false));
    data.extend_from_slice(b"cos\nsystem\n0NNNN");
    data.extend_from_slice(b"e.");
    let info = scan_bytes(&data).expect("scan");
    assert_eq!(info.arrays, 2);
    assert!(!info.globals.contains(&"os.system".to_string()));
}

#[test]
fn joblib_object_array_nested_pickle_is_walked() {
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper("O8", -1, 63, &[1], false));
    // Nested protocol-2 pickle with its own GLOBAL.
    data.extend_from_slice(b"\x80\x02cbuiltins\nlen\nq\x00)R.");
    data.extend_from_slice(b"a.");
    let info = scan_bytes(&data).expect("scan");
    assert_eq!(info.arrays, 1);
    assert!(
        info.globals.contains(&"builtins.len".to_string()),
        "{:?}",
        info.globals
    );
    // Under plain pickle.load of the whole file, the nested MEMOIZE numbering continues
    // from the outer memo, so the nested `BINGET 1` fetches the outer key 1 ("posix")
    // where joblib's fresh unpickler fetches "len". Both readings are reported.
    let mut data = vec![0x80, 4, b']', 0x94, 0x8c, 5];
    data.extend_from_slice(b"posix\x940");
    data.extend(wrapper("O8", -1, 63, &[1], false));
    data.extend_from_slice(
        b"\x80\x05\x8c\x08builtins\x94\x8c\x03len\x94\x93\x940h\x01\x8c\x06system\x93.",
    );
    data.extend_from_slice(b"a.");
    let info = scan_bytes(&data).expect("scan");
    assert_eq!(
        info.globals,
        vec![
            "builtins.len",
            "joblib.numpy_pickle.NumpyArrayWrapper",
            "len.system",
            "numpy.dtype",
            "posix.system"
        ]
    );
}

#[test]
fn joblib_layout_edge_cases() {
    // Shape given with LONG1 (as Python writes dims >= 2**31) is skipped exactly.
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper_raw("i2", -1, 0, &[0x8a, 2, 3, 0], false));
    data.extend_from_slice(&[0u8; 6]);
    data.extend_from_slice(b"a.");
    assert_eq!(scan_bytes(&data).expect("scan").arrays, 1);
    // With a max_string too small to resolve the wrapper class, the wrapper's BUILD is
    // refused rather than walked as a plain BUILD.
    let limits = PickleLimits {
        max_string: 0,
        ..PickleLimits::default()
    };
    assert!(matches!(
        scan(&data[..], &limits),
        Err(PickleError::Malformed { .. })
    ));
    // A shape whose product overflows is refused, not wrapped around.
    let mut data = vec![0x80, 4, b']', 0x94];
    let big = [0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40];
    let dims: Vec<u8> = big.iter().chain(big.iter()).copied().collect();
    data.extend(wrapper_raw("f8", -1, 0, &dims, true));
    data.extend_from_slice(b"\x01\xffa.");
    assert!(matches!(
        scan_bytes(&data),
        Err(PickleError::Malformed { .. })
    ));
    // A wrapper BUILD inside an unfinished FRAME (joblib would read the array from after
    // the frame) is refused.
    let body = wrapper("f8", -1, 0, &[1], false);
    let mut data = vec![0x80, 4, 0x95];
    data.extend_from_slice(&(body.len() as u64 + 4).to_le_bytes());
    data.extend_from_slice(&[b']', 0x94]);
    data.extend(body);
    data.extend_from_slice(b"a.");
    data.extend_from_slice(&[0u8; 8]);
    assert!(matches!(
        scan_bytes(&data),
        Err(PickleError::Malformed { .. })
    ));
    // Building the same wrapper twice (joblib would read a second array) is refused.
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper("f8", -1, 0, &[1], false));
    data.extend_from_slice(&[0u8; 8]);
    data.extend_from_slice(b"h\x02h\x03b0a.");
    let err = scan_bytes(&data).expect_err("must refuse");
    assert!(err.to_string().contains("twice"), "{err}");
    // A state key made by NEWOBJ could be a str subclass equal to "shape": refused.
    let mut data = vec![0x80, 4, b']', 0x94];
    data.extend(wrapper("f8", -1, 0, &[1], false));
    data.truncate(data.len() - 2); // drop SETITEMS, BUILD
    data.extend_from_slice(b"\x8c\x05numpy\x8c\x04str_\x93\x8c\x05shape\x85\x81K\x02\x85ub");
    data.extend_from_slice(&[0u8; 8]);
    data.extend_from_slice(b"a.");
    let err = scan_bytes(&data).expect_err("must refuse");
    assert!(err.to_string().contains("unknown value"), "{err}");
}

#[test]
fn limits_are_enforced() {
    let tree = fixture("iris_tree_p4.pkl");
    let check = |data: &[u8], limits: PickleLimits, what: &str| match scan(data, &limits) {
        Err(PickleError::Limit { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected {what} limit, got {other:?}"),
    };
    check(
        &tree,
        PickleLimits {
            max_ops: 50,
            ..Default::default()
        },
        "opcodes",
    );
    check(
        &tree,
        PickleLimits {
            max_memo: 10,
            ..Default::default()
        },
        "memo entries",
    );
    check(
        &tree,
        PickleLimits {
            max_globals: 2,
            ..Default::default()
        },
        "globals",
    );
    check(
        &tree,
        PickleLimits {
            max_stack: 5,
            ..Default::default()
        },
        "stack depth",
    );
    check(
        &tree,
        PickleLimits {
            max_input_bytes: 100,
            ..Default::default()
        },
        "input bytes",
    );
    let z = fixture("iris_tree_z3.joblib");
    check(
        &z,
        PickleLimits {
            max_input_bytes: 1000,
            ..Default::default()
        },
        "compressed input bytes",
    );
    check(
        &z,
        PickleLimits {
            max_input_bytes: 2000,
            ..Default::default()
        },
        "input bytes",
    );
    // A GLOBAL line longer than max_string is recorded as unresolved, never dropped.
    let limits = PickleLimits {
        max_string: 4,
        ..Default::default()
    };
    let info = scan(&b"\x80\x02cposix\nsystem\n."[..], &limits).expect("scan");
    assert_eq!(info.globals, vec![UNRESOLVED]);
}

#[test]
fn wrapper_built_through_reconstructor_is_refused() {
    let data = b"\x80\x04\x8c\x07copyreg\x8c\x0e_reconstructor\x93\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93\x8c\x08builtins\x8c\x06object\x93N\x87R}b.";
    let err = scan_bytes(data).expect_err("must refuse");
    assert!(matches!(err, PickleError::Malformed { .. }), "{err}");
}

#[test]
fn sniff_formats() {
    assert_eq!(sniff(b"GGUF\x03\0\0\0"), ModelFormat::Gguf);
    let mut st = 10u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"{\"a\":1}");
    assert_eq!(sniff(&st), ModelFormat::Safetensors);
    assert_eq!(sniff(b"\x08\x07\x12\x04test"), ModelFormat::Onnx);
    assert_eq!(sniff(b"\x80\x05\x95"), ModelFormat::Pickle { protocol: 5 });
    assert_eq!(sniff(b"\x80\x01"), ModelFormat::Unknown);
    assert_eq!(sniff(b"(lp0\n."), ModelFormat::Unknown);
    assert_eq!(
        sniff(&fixture("iris_tree_z3.joblib")),
        ModelFormat::JoblibZlib
    );
    // A zlib stream of something else: sniff may be inconclusive, scan refuses.
    let not_pickle = b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15";
    assert_ne!(sniff(not_pickle), ModelFormat::Pickle { protocol: 4 });
    assert!(matches!(
        scan_bytes(not_pickle),
        Err(PickleError::NotAPickle)
    ));
    assert_eq!(sniff(b"x\x9c\xff\xff"), ModelFormat::Unknown);
    assert_eq!(sniff(b""), ModelFormat::Unknown);
    assert!(matches!(
        scan_bytes(b"GGUF\x03\0\0\0"),
        Err(PickleError::NotAPickle)
    ));
}

#[test]
fn quick_fuzz_mutations_never_panic() {
    let names = [
        "evil_reduce.pkl",
        "iris_pipeline.joblib",
        "iris_tree.joblib",
        "iris_tree_p2.pkl",
        "iris_tree_p3.pkl",
        "iris_tree_p4.pkl",
        "iris_tree_p5.pkl",
        "iris_tree_z3.joblib",
    ];
    let mut seeds: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
    let mut aligned = vec![0x80, 4, b']', 0x94];
    aligned.extend(wrapper("f8", -1, 0, &[2], true));
    aligned.extend_from_slice(&[3, 0xff, 0xff, 0xff]);
    aligned.extend_from_slice(&[7u8; 16]);
    aligned.extend_from_slice(b"a.");
    let mut nested = vec![0x80, 4, b']', 0x94];
    nested.extend(wrapper("O8", -1, 63, &[1], false));
    nested.extend_from_slice(
        b"\x80\x05\x8c\x08builtins\x94\x8c\x03len\x94\x93\x940h\x01\x8c\x06system\x93.a.",
    );
    seeds.push(aligned);
    seeds.push(nested);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let limits = PickleLimits {
        max_ops: 200_000,
        ..PickleLimits::default()
    };
    let start = std::time::Instant::now();
    let mut ok = 0u32;
    for _ in 0..20_000 {
        let mut data = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(5) {
                0 => {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
                1 => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                2 => {
                    let i = rng.below(data.len());
                    let n = rng.below(8).min(data.len() - i);
                    data.drain(i..i + n);
                }
                3 => {
                    let i = rng.below(data.len() + 1);
                    let b = [b'(', 0x93, 0x94, b'h', b'b', 0x8c, 0x95, b'.', 0xff][rng.below(9)];
                    data.insert(i, b);
                }
                _ => {
                    let i = rng.below(data.len());
                    let j = rng.below(data.len());
                    data.swap(i, j);
                }
            }
            if data.is_empty() {
                data.push(0x80);
            }
        }
        if scan(&data[..], &limits).is_ok() {
            ok += 1;
        }
    }
    eprintln!(
        "quick fuzz: 20000 mutations in {:?} ({ok} scanned cleanly)",
        start.elapsed()
    );
}
