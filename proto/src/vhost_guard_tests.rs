//! The path equivalences of `docs/path-equivalences.md`, one row each: every spelling a
//! lenient server reads as `/admin` is either refused or guarded by `/admin`'s location.
#![allow(clippy::unwrap_used)]
use super::super::path::{canonical_keeping_slashes, match_form, PathError};
use super::*;

/// What frps must do with a spelling.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// A guard form is covered by `/admin`'s guard key: the request needs its password.
    Guarded,
    /// Refused with `400`, for this reason.
    Refused(PathError),
}
use Want::{Guarded, Refused};

/// (request path, the location it reaches, the server behaviour that reads it so, what frps
/// does).
const ROWS: &[(&str, &str, &str, Want)] = &[
    (
        "/ADMIN/",
        "/admin",
        "IIS/NTFS and ASP.NET Core: case-insensitive",
        Guarded,
    ),
    (
        "/Admin",
        "/admin",
        "Express: caseSensitive false (the default)",
        Guarded,
    ),
    (
        "/%41dmin",
        "/admin",
        "any server decodes, then folds ASCII case",
        Guarded,
    ),
    (
        "/adm%C4%B0n",
        "/admin",
        "Java equalsIgnoreCase: toLowerCase(U+0130) is 'i'",
        Guarded,
    ),
    ("/adm\u{130}n", "/admin", "the same, sent raw", Guarded),
    (
        "/adm%C4%B1n",
        "/admin",
        ".NET OrdinalIgnoreCase: ToUpperInvariant(U+0131) is 'I'",
        Guarded,
    ),
    (
        "/%E2%84%AAey",
        "/key",
        "Go strings.EqualFold: KELVIN SIGN folds to 'k'",
        Guarded,
    ),
    (
        "/cla%C5%BF%C5%BF",
        "/class",
        "Go EqualFold, Java: LATIN SMALL LONG S folds to 's'",
        Guarded,
    ),
    (
        "/cla%C3%9F",
        "/class",
        "Python casefold: 'ß' is 'ss'",
        Guarded,
    ),
    (
        "/cla%DF",
        "/class",
        "Tomcat before 8 (ISO-8859-1): %DF is 'ß', casefold 'ss'",
        Guarded,
    ),
    (
        "/%EF%AC%80",
        "/ff",
        "Python casefold / Java toUpperCase: U+FB00 is 'ff'",
        Guarded,
    ),
    (
        "/%EF%BD%81dmin",
        "/admin",
        "NFKC: FULLWIDTH LATIN SMALL LETTER A is 'a'",
        Guarded,
    ),
    (
        "/%E2%93%90dmin",
        "/admin",
        "NFKC: CIRCLED LATIN SMALL LETTER A is 'a'",
        Guarded,
    ),
    (
        "/%C4%81dmin",
        "/admin",
        "Windows best-fit to an ANSI code page: 'ā' is 'a'",
        Guarded,
    ),
    (
        "/admin.",
        "/admin",
        "Windows: trailing dots trimmed",
        Guarded,
    ),
    (
        "/admin%20",
        "/admin",
        "Windows: trailing spaces trimmed",
        Guarded,
    ),
    (
        "/admin.%20./x",
        "/admin",
        "Windows: dots and spaces trimmed together",
        Guarded,
    ),
    (
        "/%20admin",
        "/admin",
        "Spring AntPathMatcher trimTokens: Java trim() on each segment",
        Guarded,
    ),
    (
        "/admin%C2%A0",
        "/admin",
        ".NET Trim() / Go TrimSpace / Python strip(): NO-BREAK SPACE",
        Guarded,
    ),
    (
        "/admin%A0",
        "/admin",
        "Tomcat ISO-8859-1 then .NET-style Trim(): %A0 is NO-BREAK SPACE",
        Guarded,
    ),
    (
        "/admin%E3%80%80",
        "/admin",
        ".NET Trim(): IDEOGRAPHIC SPACE",
        Guarded,
    ),
    (
        "/admin%E2%80%8B",
        "/admin",
        ".NET Framework 3.5 Trim(): ZERO WIDTH SPACE",
        Guarded,
    ),
    (
        "/admin%C2%85",
        "/admin",
        ".NET Trim() / Go TrimSpace: NEXT LINE (U+0085)",
        Guarded,
    ),
    (
        "/%2561dmin",
        "/admin",
        "IIS double decoding: %2561 is 'a'",
        Guarded,
    ),
    (
        "/Admin%2520",
        "/admin",
        "double decoding, then trailing space trimmed",
        Guarded,
    ),
    (
        "/admin%3Bx",
        "/admin",
        "a server that decodes before removing ';' parameters",
        Guarded,
    ),
    (
        "/admin;x",
        "/admin",
        "Tomcat, Jetty, Spring: path parameters",
        Guarded,
    ),
    (
        "/admin%3Fx",
        "/admin",
        "a proxy that decodes, then splits off the query",
        Guarded,
    ),
    (
        "/admin%23x",
        "/admin",
        "a proxy that decodes, then drops the fragment",
        Guarded,
    ),
    (
        "/admin::$DATA",
        "/admin",
        "IIS on NTFS: the default data stream of /admin",
        Guarded,
    ),
    (
        "/admin:$I30:$INDEX_ALLOCATION",
        "/admin",
        "IIS on NTFS: the directory stream of /admin",
        Guarded,
    ),
    (
        "/ADMIN%EF%BC%8Fx",
        "/admin/x",
        "NFKC: FULLWIDTH SOLIDUS is '/'",
        Guarded,
    ),
    (
        "/ADMIN%EF%BC%8Fx",
        "/admin",
        "the same, under the location",
        Guarded,
    ),
    (
        "/x/..%20/admin",
        "/admin",
        "Windows trims '.. ' to '..', then climbs",
        Refused(PathError::LooseDotSegment),
    ),
    (
        "/x/..%3B/admin",
        "/admin",
        "decode, drop ';' parameters, then climb",
        Refused(PathError::LooseDotSegment),
    ),
    (
        "/x/%EF%BC%8E%EF%BC%8E/admin",
        "/admin",
        "NFKC: two FULLWIDTH FULL STOPs are '..'",
        Refused(PathError::LooseDotSegment),
    ),
    (
        "/x/.../admin",
        "/admin",
        "Windows reads '...' as a dot segment",
        Refused(PathError::LooseDotSegment),
    ),
    (
        "/admin%09",
        "/admin",
        "Java trim(): TAB (encoded controls are refused)",
        Refused(PathError::Control),
    ),
    (
        "/admin%0D%0A",
        "/admin",
        "Java trim(): CR LF",
        Refused(PathError::Control),
    ),
    (
        "/admin%7F",
        "/admin",
        "DEL, which servers strip or refuse",
        Refused(PathError::Control),
    ),
    (
        "/admin%2509",
        "/admin",
        "double decoding, then Java trim()",
        Refused(PathError::DoubleEncoded),
    ),
    (
        "/admin%253Bx",
        "/admin",
        "double decoding, then ';' parameters",
        Refused(PathError::DoubleEncoded),
    ),
    (
        "/admin%253F",
        "/admin",
        "double decoding, then the query split off",
        Refused(PathError::DoubleEncoded),
    ),
    (
        "/x/%252e%252e/admin",
        "/admin",
        "double decoding, then dot segments",
        Refused(PathError::DoubleEncoded),
    ),
    (
        "/x/%C0%AE%C0%AE/admin",
        "/admin",
        "lax UTF-8 decoder: overlong 2-byte '.'",
        Refused(PathError::Overlong),
    ),
    (
        "/x/%E0%80%AE%E0%80%AE/admin",
        "/admin",
        "lax UTF-8 decoder: overlong 3-byte '.'",
        Refused(PathError::Overlong),
    ),
    (
        "/x/%F0%80%80%AE/admin",
        "/admin",
        "lax UTF-8 decoder: overlong 4-byte '.'",
        Refused(PathError::Overlong),
    ),
    (
        "/x%5Cadmin",
        "/admin",
        "IIS, Tomcat (older): '\\' is '/'",
        Refused(PathError::EncodedSeparator),
    ),
    (
        "/x/%uFF0E%uFF0E/admin",
        "/admin",
        "IIS %u escapes",
        Refused(PathError::BadEscape),
    ),
];

/// What frps does with `raw`, checking the guard of `location`.
fn outcome(raw: &str, location: &str) -> Result<bool, PathError> {
    let canonical = canonical_keeping_slashes(raw)?;
    let forms = guard_forms(&match_form(&canonical)?)?;
    let key = guard_key(location);
    Ok(forms.iter().any(|f| covers(&key, f)))
}

#[test]
fn every_equivalence_is_guarded_or_refused() {
    for (raw, location, server, want) in ROWS {
        let got = match outcome(raw, location) {
            Ok(true) => Guarded,
            Ok(false) => panic!("{raw} ({server}) reaches {location} unguarded"),
            Err(e) => Refused(e),
        };
        assert_eq!(&got, want, "{raw}: {server}");
    }
}

#[test]
fn the_guard_keeps_what_no_server_merges() {
    for raw in [
        "/administrator",
        "/admins",
        "/adminx/y",
        "/a/admin",
        "/adm%C3%A6n",
        "/%D0%B0dmin",
        "/admin%E2%80%A4x",
    ] {
        assert_eq!(outcome(raw, "/admin"), Ok(false), "{raw}");
    }
}

#[test]
fn forms_and_keys_are_folded_paths() {
    assert_eq!(guard_forms("/ADMIN/").unwrap(), ["/admin"]);
    assert_eq!(guard_forms("/").unwrap(), ["/"]);
    assert_eq!(guard_forms("/%2541dmin").unwrap(), ["/%41dmin", "/admin"]);
    assert_eq!(
        guard_forms("/A/%20/B").unwrap(),
        ["/a/b"],
        "a blank segment drops"
    );
    assert_eq!(guard_forms("/caf%C3%A9").unwrap(), ["/cafe"]);
    assert_eq!(guard_forms("/%CE%A3%CF%82").unwrap(), ["/\u{3c3}\u{3c3}"]);
    assert_eq!(guard_key("/Admin"), "/admin");
    assert_eq!(guard_key("/caf%C3%A9/"), "/cafe");
    assert!(covers("/", "/anything"));
    assert!(covers("/api", "/api/v1"));
    assert!(!covers("/api", "/apix"));
}
