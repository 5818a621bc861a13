//! `sntrup761x25519-sha512` (and its older name `sntrup761x25519-sha512@openssh.com`):
//! Streamlined NTRU Prime 761 combined with X25519, as OpenSSH 8.5+ implements it
//! (draft-ietf-sshm-ntruprime-ssh). The messages are those of `mlkem768x25519-sha256`: the
//! client sends its sntrup761 public key and its X25519 public key, the server answers with
//! the sntrup761 ciphertext and its X25519 public key; the shared secret is
//! SHA-512(sntrup761 secret || X25519 secret), encoded as a string, and SHA-512 is the hash.
//!
//! The lattice arithmetic is PQClean's sntrup761 (the NTRU Prime authors' reference code, as
//! in OpenSSH), through the `pqcrypto-ntruprime` bindings; it draws its randomness from the
//! operating system.

use byteorder::{BigEndian, ByteOrder};
use curve25519_dalek::montgomery::MontgomeryPoint;
use log::debug;
use pqcrypto_ntruprime::sntrup761;
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SharedSecret as _};
use sha2::Digest;
use ssh_encoding::{Encode, Writer};

use super::{compute_keys, KexAlgorithm, KexAlgorithmImplementor, KexType, SharedSecret};
use crate::mac;
use crate::session::Exchange;
use crate::{cipher, msg, CryptoVec, Error};

const SNTRUP761_PUBLIC_KEY_SIZE: usize = sntrup761::public_key_bytes();
const SNTRUP761_CIPHERTEXT_SIZE: usize = sntrup761::ciphertext_bytes();
const X25519_PUBLIC_KEY_SIZE: usize = 32;

pub struct Sntrup761X25519KexType {}

impl KexType for Sntrup761X25519KexType {
    fn make(&self) -> KexAlgorithm {
        Sntrup761X25519Kex {
            sntrup_secret: None,
            x25519_secret: None,
            k_pq: None,
            k_cl: None,
        }
        .into()
    }
}

#[doc(hidden)]
pub struct Sntrup761X25519Kex {
    sntrup_secret: Option<Box<sntrup761::SecretKey>>,
    x25519_secret: Option<[u8; 32]>,
    k_pq: Option<sntrup761::SharedSecret>,
    k_cl: Option<MontgomeryPoint>,
}

impl std::fmt::Debug for Sntrup761X25519Kex {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "Sntrup761X25519Kex {{ sntrup_secret: [hidden], x25519_secret: [hidden], k_pq: [hidden], k_cl: [hidden] }}",
        )
    }
}

impl Sntrup761X25519Kex {
    /// K = SHA-512(sntrup761 secret || X25519 secret).
    fn combined_secret(&self) -> Result<sha2::digest::Output<sha2::Sha512>, Error> {
        let k_pq = self.k_pq.as_ref().ok_or(Error::KexInit)?;
        let k_cl = self.k_cl.as_ref().ok_or(Error::KexInit)?;
        let mut hasher = sha2::Sha512::new();
        hasher.update(k_pq.as_bytes());
        hasher.update(k_cl.0);
        Ok(hasher.finalize())
    }
}

impl KexAlgorithmImplementor for Sntrup761X25519Kex {
    fn skip_exchange(&self) -> bool {
        false
    }

    fn server_dh(&mut self, exchange: &mut Exchange, payload: &[u8]) -> Result<(), Error> {
        debug!("server_dh (hybrid sntrup761)");

        if payload.first() != Some(&msg::KEX_HYBRID_INIT) || payload.len() < 5 {
            return Err(Error::Inconsistent);
        }

        #[allow(clippy::indexing_slicing)] // length checked
        let c_init_len = BigEndian::read_u32(&payload[1..]) as usize;

        if payload.len() < 5 + c_init_len {
            return Err(Error::Inconsistent);
        }

        if c_init_len != SNTRUP761_PUBLIC_KEY_SIZE + X25519_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }

        #[allow(clippy::indexing_slicing)] // length checked
        let c_init = &payload[5..5 + c_init_len];
        #[allow(clippy::indexing_slicing)] // length checked
        let (c_pk2_bytes, c_pk1_bytes) = c_init.split_at(SNTRUP761_PUBLIC_KEY_SIZE);

        let c_pk2 = sntrup761::PublicKey::from_bytes(c_pk2_bytes).map_err(|_| Error::Kex)?;
        let mut c_pk1 = MontgomeryPoint([0; 32]);
        c_pk1.0.copy_from_slice(c_pk1_bytes);

        let (k_pq, s_ct2) = sntrup761::encapsulate(&c_pk2);

        let s_secret = rand::random::<[u8; 32]>();
        let s_pk1 = MontgomeryPoint::mul_base_clamped(s_secret);
        let k_cl = c_pk1.mul_clamped(s_secret);
        if k_cl.0 == [0u8; 32] {
            debug!("client sent a low-order curve25519 pubkey");
            return Err(Error::Kex);
        }

        exchange.server_ephemeral.clear();
        exchange.server_ephemeral.extend_from_slice(s_ct2.as_bytes());
        exchange.server_ephemeral.extend_from_slice(&s_pk1.0);

        self.k_pq = Some(k_pq);
        self.k_cl = Some(k_cl);
        Ok(())
    }

    fn client_dh(
        &mut self,
        client_ephemeral: &mut Vec<u8>,
        writer: &mut impl Writer,
    ) -> Result<(), Error> {
        let (sntrup_pk, sntrup_sk) = sntrup761::keypair();

        let x25519_secret = rand::random::<[u8; 32]>();
        let x25519_pk = MontgomeryPoint::mul_base_clamped(x25519_secret);

        client_ephemeral.clear();
        client_ephemeral.extend_from_slice(sntrup_pk.as_bytes());
        client_ephemeral.extend_from_slice(&x25519_pk.0);

        msg::KEX_HYBRID_INIT.encode(writer)?;
        client_ephemeral.as_slice().encode(writer)?;

        self.sntrup_secret = Some(Box::new(sntrup_sk));
        self.x25519_secret = Some(x25519_secret);
        Ok(())
    }

    fn compute_shared_secret(&mut self, remote_pubkey_: &[u8]) -> Result<(), Error> {
        if remote_pubkey_.len() != SNTRUP761_CIPHERTEXT_SIZE + X25519_PUBLIC_KEY_SIZE {
            return Err(Error::Kex);
        }
        let (s_ct2_bytes, s_pk1_bytes) = remote_pubkey_.split_at(SNTRUP761_CIPHERTEXT_SIZE);

        let s_ct2 = sntrup761::Ciphertext::from_bytes(s_ct2_bytes).map_err(|_| Error::Kex)?;
        let sntrup_secret = self.sntrup_secret.take().ok_or(Error::KexInit)?;
        let k_pq = sntrup761::decapsulate(&s_ct2, &sntrup_secret);

        let mut s_pk1 = MontgomeryPoint([0; 32]);
        s_pk1.0.copy_from_slice(s_pk1_bytes);
        let x25519_secret = self.x25519_secret.take().ok_or(Error::KexInit)?;
        let k_cl = s_pk1.mul_clamped(x25519_secret);
        if k_cl.0 == [0u8; 32] {
            debug!("server sent a low-order curve25519 pubkey");
            return Err(Error::Kex);
        }

        self.k_pq = Some(k_pq);
        self.k_cl = Some(k_cl);
        Ok(())
    }

    fn shared_secret_bytes(&self) -> Option<&[u8]> {
        // As for ML-KEM: the X25519 part; the hybrid secret only enters compute_keys.
        self.k_cl.as_ref().map(|k| k.0.as_slice())
    }

    fn compute_exchange_hash(
        &self,
        key: &[u8],
        exchange: &Exchange,
        buffer: &mut CryptoVec,
    ) -> Result<Vec<u8>, Error> {
        buffer.clear();
        exchange.client_id.encode(buffer)?;
        exchange.server_id.encode(buffer)?;
        exchange.client_kex_init.encode(buffer)?;
        exchange.server_kex_init.encode(buffer)?;

        buffer.extend(key);

        exchange.client_ephemeral.encode(buffer)?;
        exchange.server_ephemeral.encode(buffer)?;

        (*self.combined_secret()?).encode(buffer)?;

        let mut hasher = sha2::Sha512::new();
        hasher.update(&buffer);
        Ok(hasher.finalize().to_vec())
    }

    fn compute_keys(
        &self,
        session_id: &[u8],
        exchange_hash: &[u8],
        cipher: cipher::Name,
        remote_to_local_mac: mac::Name,
        local_to_remote_mac: mac::Name,
        is_server: bool,
    ) -> Result<super::cipher::CipherPair, Error> {
        let k = self.combined_secret()?;
        let shared_secret = SharedSecret::from_string(&k)?;
        compute_keys::<sha2::Sha512>(
            Some(&shared_secret),
            session_id,
            exchange_hash,
            cipher,
            remote_to_local_mac,
            local_to_remote_mac,
            is_server,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Sntrup761X25519Kex {
        Sntrup761X25519Kex { sntrup_secret: None, x25519_secret: None, k_pq: None, k_cl: None }
    }

    #[test]
    fn client_and_server_agree() {
        let (mut client, mut server) = (fresh(), fresh());
        let mut client_ephemeral = Vec::new();
        let mut init = Vec::new();
        client.client_dh(&mut client_ephemeral, &mut init).unwrap();
        assert_eq!(client_ephemeral.len(), SNTRUP761_PUBLIC_KEY_SIZE + X25519_PUBLIC_KEY_SIZE);
        let mut exchange = Exchange::default();
        server.server_dh(&mut exchange, &init).unwrap();
        assert_eq!(exchange.server_ephemeral.len(), SNTRUP761_CIPHERTEXT_SIZE + X25519_PUBLIC_KEY_SIZE);
        client.compute_shared_secret(&exchange.server_ephemeral).unwrap();
        assert_eq!(client.combined_secret().unwrap(), server.combined_secret().unwrap());
    }
}
