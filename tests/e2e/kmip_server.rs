//! The KMIP test servers themselves (`tests/support/kmip.rs`): real PyKMIP 0.11.0 servers that
//! keep their objects across a restart, checked with PyKMIP's own Python client and openssl.

use std::net::TcpStream;
use std::time::Instant;

use crate::support::kmip::{KmipCa, KmipServer};
use crate::support::openssl;

#[test]
fn two_servers_keep_their_objects_across_a_restart() {
    let ca = KmipCa::new("keysmith-test-kmip-ca");
    let started = Instant::now();
    let mut a = KmipServer::start_with_ca("a", ca.clone());
    let b = KmipServer::start_with_ca("b", ca.clone());
    eprintln!(
        "two KMIP servers up in {:.1}s (a: {} in {:.1}s, b: {} in {:.1}s)",
        started.elapsed().as_secs_f64(),
        a.address(),
        a.startup().as_secs_f64(),
        b.address(),
        b.startup().as_secs_f64()
    );
    assert_ne!(a.port(), b.port());

    let versions = a.python().versions();
    assert!(
        versions.iter().any(|v| v == "1.2") && versions.iter().any(|v| v == "2.0"),
        "protocol versions of PyKMIP: {versions:?}"
    );

    let value = b"hunter2 \x00\xff\n".to_vec();
    let uid = a.python_register_password("db-password", &value);
    assert_eq!(a.python_locate("db-password"), vec![uid.clone()]);
    assert_eq!(a.python_get(&uid), value);
    let object = a.python().get_object(&uid);
    assert_eq!(object.object_type, "SECRET_DATA");
    assert_eq!(object.data_type.as_deref(), Some("PASSWORD"));
    assert_eq!(object.names, vec!["db-password".to_owned()]);
    assert!(a.python_locate("no-such-name").is_empty());

    // Each server has its own database.
    assert!(b.python_locate("db-password").is_empty());
    // The certificate's CN owns the object: another identity of the same CA sees nothing.
    let other = ca.client_certificate("someone-else");
    assert!(a.python_as(&other).locate("db-password").is_empty());
    let denied = a.python_as(&other).try_get(&uid);
    assert!(
        denied.is_err(),
        "another identity got the object: {denied:?}"
    );

    let stopping = Instant::now();
    a.stop();
    eprintln!(
        "KMIP server a stopped in {:.2}s",
        stopping.elapsed().as_secs_f64()
    );
    assert!(!a.is_running());
    let refused = TcpStream::connect(a.address());
    assert!(
        refused.is_err(),
        "port {} still accepts connections after stop()",
        a.port()
    );
    // The other server is unaffected.
    assert_eq!(b.python().versions(), versions);

    let port = a.port();
    a.restart();
    eprintln!(
        "KMIP server a restarted on {} in {:.1}s",
        a.address(),
        a.startup().as_secs_f64()
    );
    assert_eq!(a.port(), port, "restart keeps the port");
    assert_eq!(a.python_locate("db-password"), vec![uid.clone()]);
    assert_eq!(a.python_get(&uid), value);

    // A second registration under the same name is a second object; Locate lists the newest
    // first.
    let second = a.python_register_password("db-password", b"second");
    let found = a.python_locate("db-password");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&uid) && found.contains(&second), "{found:?}");
    a.python().destroy(&uid);
    assert_eq!(a.python_locate("db-password"), vec![second]);
    let gone = a.python().try_get(&uid);
    assert!(
        gone.as_ref().is_err_and(|e| e.contains("ITEM_NOT_FOUND")),
        "destroyed object: {gone:?}"
    );
}

#[test]
fn openssl_handshake_is_mutual_tls_1_2_with_ecdhe_ecdsa() {
    let server = KmipServer::start("tls");
    let address = server.address();
    let path = |name: &str| server.file(name).to_string_lossy().into_owned();
    let (ca, cert, key) = (path("ca.crt"), path("client.crt"), path("client.key"));
    let s_client = |extra: &[&str]| {
        let mut args = vec!["s_client", "-connect", &address, "-CAfile", &ca];
        args.extend_from_slice(&["-verify_return_error", "-verify_ip", "127.0.0.1"]);
        args.extend_from_slice(extra);
        openssl::run(&args) // stdin is empty: s_client closes right after the handshake
    };

    let (ok, out) = s_client(&["-tls1_2", "-cert", &cert, "-key", &key]);
    let cipher = negotiated_cipher(&out);
    eprintln!("openssl s_client -tls1_2 with the client certificate: {cipher:?}");
    assert!(ok, "handshake failed:\n{out}\n{}", server.log_tail());
    assert!(
        cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("ECDHE-ECDSA-")),
        "negotiated {cipher:?}:\n{out}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");

    // What an AEAD-only client such as rustls gets.
    let aead = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384";
    let (ok, out) = s_client(&["-tls1_2", "-cipher", aead, "-cert", &cert, "-key", &key]);
    let cipher = negotiated_cipher(&out);
    eprintln!("openssl s_client -tls1_2 -cipher {aead}: {cipher:?}");
    assert!(ok, "AEAD handshake failed:\n{out}\n{}", server.log_tail());
    assert!(
        cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("ECDHE-ECDSA-AES") && c.contains("GCM")),
        "negotiated {cipher:?}:\n{out}"
    );

    // No client certificate: the server aborts the handshake with an alert (s_client still
    // prints the cipher it had agreed on before).
    let (ok, out) = s_client(&["-tls1_2"]);
    assert!(
        !ok && out.contains("alert handshake failure"),
        "handshake without a client certificate succeeded:\n{out}"
    );
    // TLS 1.3 is not offered.
    let (ok, out) = s_client(&["-tls1_3", "-cert", &cert, "-key", &key]);
    assert!(
        !ok && negotiated_cipher(&out).is_none(),
        "TLS 1.3 handshake succeeded:\n{out}"
    );
}

/// The cipher of `New, TLSv1.2, Cipher is X` in s_client's output, unless it is `(NONE)` —
/// s_client prints that line even when the server aborted the handshake.
fn negotiated_cipher(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.split_once("Cipher is ").map(|(_, c)| c.trim().to_owned()))
        .filter(|c| c != "(NONE)")
}
