"""opentse.crypto: keys (the sharp tools), the installation secret, the local CA and
secret hashing. Only ``keys`` ever handles private key material in clear."""
