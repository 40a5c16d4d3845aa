"""Keys per purpose: HKDF per RFC 5869, and one key per use so one cannot stand for another."""

from __future__ import annotations

import pytest

from recovery.keys import Purpose, derive_key, hkdf_sha256, link_keys


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    """The derivation is the standard one (RFC 5869, appendix A.1), so it can be checked elsewhere."""
    okm = hkdf_sha256(bytes([0x0B] * 22), salt=bytes(range(0x0D)), info=bytes(range(0xF0, 0xFA)), length=42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_each_purpose_gets_its_own_key_and_none_is_the_secret() -> None:
    """Links, sessions and addresses never share a key, and none of them is the configured secret."""
    secret = "a-configured-link-secret-of-at-least-32-chars"
    keys = {purpose: derive_key(secret, purpose) for purpose in Purpose}
    assert len(set(keys.values())) == len(Purpose)
    assert all(secret.encode() not in key for key in keys.values())


def test_link_keys_keep_the_previous_secret_for_address_lookups() -> None:
    """During a rotation the previous secret still finds opt-outs keyed by it; new ones use the current."""
    keys = link_keys("current-secret-" + "x" * 32, "previous-secret-" + "y" * 32)
    assert keys.addresses[0] == derive_key("current-secret-" + "x" * 32, Purpose.ADDRESSES)
    assert keys.addresses[1] == derive_key("previous-secret-" + "y" * 32, Purpose.ADDRESSES)


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_hkdf_refuses_impossible_lengths(length: int) -> None:
    """RFC 5869 caps the output at 255 blocks."""
    with pytest.raises(ValueError, match="HKDF"):
        hkdf_sha256(b"k", info=b"", length=length)
