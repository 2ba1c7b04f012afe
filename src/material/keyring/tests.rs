use std::process::Command;

use super::*;

fn roundtrip(recipe: &Recipe) -> (Material, BTreeMap<String, Vec<u8>>) {
    let made = recipe.make(&Progress::default()).unwrap();
    let data: BTreeMap<String, Vec<u8>> = made
        .secret_data()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_vec()))
        .collect();
    let read = recipe.read(&data).unwrap();
    recipe.check(&read).unwrap();
    assert_eq!(
        read.fingerprint(b"salt").unwrap(),
        made.fingerprint(b"salt").unwrap(),
        "{recipe:?}: the fingerprint survives a write and read"
    );
    (read, data)
}

fn remote(username: &str, length: u32) -> Recipe {
    Recipe::RemoteAccess {
        username: username.to_owned(),
        password_length: length,
    }
}

#[test]
fn every_fast_recipe_reads_back_what_it_wrote() {
    let recipes = [
        Recipe::Psk { length: 1 },
        Recipe::Psk { length: 32 },
        Recipe::Dh(DhRecipe::Group(DhGroup::ffdhe3072)),
        Recipe::OpenVpn,
        remote("alice", 20),
        Recipe::Uftp(KeyKind::EcdsaP384),
        Recipe::Uftp(KeyKind::Rsa(2048)),
    ];
    for recipe in &recipes {
        let (material, data) = roundtrip(recipe);
        assert!(!recipe.is_slow(), "{recipe:?}");
        let expected: Vec<&str> = match recipe {
            Recipe::Psk { .. } => vec![PSK, PSK_HEX],
            Recipe::Dh(_) => vec![DHPARAM_PEM],
            Recipe::OpenVpn => vec![STATIC_KEY],
            Recipe::RemoteAccess { .. } => vec![HTPASSWD, PASSWORD, USERNAME],
            Recipe::Uftp(_) => vec![UFTP_KEY, UFTP_PUB],
        };
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        assert!(material.size().is_some());
    }
    assert!(Recipe::Dh(DhRecipe::Generate(2048)).is_slow());
}

#[test]
fn a_different_recipe_is_a_mismatch() {
    let (psk, _) = roundtrip(&Recipe::Psk { length: 16 });
    let why = Recipe::Psk { length: 32 }.check(&psk).unwrap_err();
    assert_eq!(why.0, "the PSK has 16 bytes, spec asks for 32");

    let (dh, _) = roundtrip(&Recipe::Dh(DhRecipe::Group(DhGroup::ffdhe2048)));
    let other_group = Recipe::Dh(DhRecipe::Group(DhGroup::ffdhe3072)).check(&dh);
    assert!(other_group.unwrap_err().0.contains("ffdhe3072"));
    let generated = Recipe::Dh(DhRecipe::Generate(2048)).check(&dh);
    assert!(generated.unwrap_err().0.contains("fixed RFC 7919 group"));

    let (credentials, _) = roundtrip(&remote("alice", 24));
    assert!(remote("bob", 24).check(&credentials).is_err());
    assert!(remote("alice", 25).check(&credentials).is_err());

    let (uftp, _) = roundtrip(&Recipe::Uftp(KeyKind::EcdsaP256));
    assert!(Recipe::Uftp(KeyKind::EcdsaP384).check(&uftp).is_err());
    assert!(Recipe::OpenVpn.check(&uftp).is_err());
}

#[test]
fn tampered_data_does_not_read() {
    let recipe = Recipe::Psk { length: 8 };
    let (_, mut data) = roundtrip(&recipe);
    data.insert(PSK_HEX.to_owned(), b"00".to_vec());
    assert!(
        recipe
            .read(&data)
            .unwrap_err()
            .to_string()
            .contains(PSK_HEX)
    );

    let recipe = Recipe::Uftp(KeyKind::EcdsaP256);
    let (_, mut data) = roundtrip(&recipe);
    let (_, other) = roundtrip(&recipe);
    data.insert(UFTP_PUB.to_owned(), other[UFTP_PUB].clone());
    assert!(
        recipe
            .read(&data)
            .unwrap_err()
            .to_string()
            .contains(UFTP_PUB)
    );

    let recipe = remote("alice", 20);
    let (_, mut data) = roundtrip(&recipe);
    data.insert(PASSWORD.to_owned(), b"AAAAAAAAAAAAAAAAAAAA".to_vec());
    let material = recipe.read(&data).unwrap();
    let why = recipe.check(&material).unwrap_err();
    assert!(why.0.contains("htpasswd"), "{why}");

    let recipe = Recipe::Dh(DhRecipe::Group(DhGroup::ffdhe2048));
    let empty = BTreeMap::new();
    assert!(
        recipe
            .read(&empty)
            .unwrap_err()
            .to_string()
            .contains(DHPARAM_PEM)
    );
}

#[test]
fn uftp_public_key_is_what_openssl_derives_from_the_private_key() {
    let (_, data) = roundtrip(&Recipe::Uftp(KeyKind::EcdsaP256));
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("uftp.key");
    std::fs::write(&key, &data[UFTP_KEY]).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, data[UFTP_PUB]);
}

#[test]
fn fingerprints_differ_between_materials_and_never_contain_them() {
    let (a, data) = roundtrip(&Recipe::Psk { length: 32 });
    let (b, _) = roundtrip(&Recipe::Psk { length: 32 });
    assert_ne!(
        a.fingerprint(b"salt").unwrap(),
        b.fingerprint(b"salt").unwrap()
    );
    let hex = String::from_utf8(data[PSK_HEX].clone()).unwrap();
    assert!(!a.fingerprint(b"salt").unwrap().contains(&hex));
    // Secret material is fingerprinted with a keyed hash: another salt, another value;
    // never the plain digest of the PSK.
    assert_ne!(
        a.fingerprint(b"salt").unwrap(),
        a.fingerprint(b"pepper").unwrap()
    );
    let plain = crate::material::fingerprint::sha256_tagged(&data[PSK]);
    assert!(
        !a.fingerprint(b"salt")
            .unwrap()
            .ends_with(plain.trim_start_matches("SHA256:"))
    );
    assert!(a.fingerprint(b"salt").unwrap().starts_with("HMAC-SHA256:"));
    let (dh, _) = roundtrip(&Recipe::Dh(DhRecipe::Group(DhGroup::ffdhe2048)));
    assert_eq!(
        dh.fingerprint(b"salt").unwrap(),
        dh.fingerprint(b"pepper").unwrap(),
        "public material needs no salt"
    );
    assert!(!format!("{a:?}").contains(&hex), "Debug redacts the PSK");
}
