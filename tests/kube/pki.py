# -*- coding: utf-8 -*-
# Copyright: contributors to slurm_exporter.incident_response
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control plane's keys and certificates, made fresh for every cluster (the ``cryptography`` package).

A CA; the API server's serving certificate (127.0.0.1, localhost and the in-cluster names); kwok's serving
certificate (the "kubelet" the API server fetches pod logs from, verified against the CA); the API server's client
certificate towards it; the service-account signing key pair. Keys are EC P-256 (RSA 2048 for service accounts,
which the token signer and every verifier support), files 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 30
API_SERVER_NAMES = ('localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc',
                    'kubernetes.default.svc.cluster.local')


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)
    return path


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name, organization=None):
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=DAYS)))


class Pki:
    """Writes the files into ``directory``; attributes are their paths."""

    def __init__(self, directory, host='127.0.0.1', service_ip='10.96.0.1'):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name('slurm-ir-test-ca')
        ca = (_builder(ca_name, ca_name, ca_key.public_key())
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        self._ca, self._ca_key = ca, ca_key
        self.ca_cert = _write(self.path('ca.crt'), ca.public_bytes(serialization.Encoding.PEM), 0o644)
        self.ca_key = _write(self.path('ca.key'), _key_pem(ca_key))
        names = [x509.DNSName(name) for name in API_SERVER_NAMES] + [x509.IPAddress(ipaddress.ip_address(host)),
                                                                     x509.IPAddress(ipaddress.ip_address(service_ip))]
        self.apiserver_cert, self.apiserver_key = self._leaf('apiserver', 'kube-apiserver', names, server=True)
        kwok_names = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName('localhost')]
        self.kwok_cert, self.kwok_key = self._leaf('kwok', 'kwok-kubelet', kwok_names, server=True)
        self.kubelet_client_cert, self.kubelet_client_key = self._leaf('apiserver-kubelet-client', 'kube-apiserver-kubelet-client',
                                                                       [], server=False, organization='system:masters')
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sa_key = _write(self.path('sa.key'), _key_pem(sa_key))
        self.sa_pub = _write(self.path('sa.pub'), sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)

    def path(self, name):
        return os.path.join(self.directory, name)

    def _leaf(self, stem, common_name, names, server, organization=None):
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (_builder(_name(common_name, organization), self._ca.subject, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        return (_write(self.path(stem + '.crt'), cert.public_bytes(serialization.Encoding.PEM), 0o644),
                _write(self.path(stem + '.key'), _key_pem(key)))
