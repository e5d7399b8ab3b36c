/**
 * Program IDL in camelCase format in order to be used in JS/TS.
 *
 * Note that this is only a type helper and is not the actual IDL. The original
 * IDL can be found at `idl/amp_channel.json`.
 */
export type AmpChannel = {
  "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX",
  "metadata": {
    "name": "ampChannel",
    "version": "0.1.0",
    "spec": "0.1.0",
    "description": "AMP payment channels: SPL-token channels paid by ed25519 vouchers"
  },
  "instructions": [
    {
      "name": "close",
      "docs": [
        "The recipient's cooperative close, optionally settling a final voucher."
      ],
      "discriminator": [
        98,
        165,
        201,
        177,
        108,
        65,
        206,
        96
      ],
      "accounts": [
        {
          "name": "recipient",
          "signer": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "payer",
          "docs": [
            "accounts' rent. The tokens go to the funder's token account."
          ],
          "writable": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "recipientToken",
          "docs": [
            "the handler when a final voucher pays into it."
          ],
          "writable": true
        },
        {
          "name": "funderToken",
          "docs": [
            "handler when the vault has anything to refund."
          ],
          "writable": true
        },
        {
          "name": "mint",
          "docs": [
            "closed; read by the handler ([`LiveMint::read`])."
          ],
          "relations": [
            "channel"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "instructions",
          "address": "Sysvar1nstructions1111111111111111111111111"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": [
        {
          "name": "finalVoucher",
          "type": "bool"
        }
      ]
    },
    {
      "name": "closeDelegation",
      "docs": [
        "Closes a delegation (by the recipient any time, by anyone after grace)."
      ],
      "discriminator": [
        41,
        110,
        46,
        165,
        0,
        109,
        193,
        193
      ],
      "accounts": [
        {
          "name": "closer",
          "signer": true
        },
        {
          "name": "channel",
          "writable": true,
          "relations": [
            "delegation"
          ]
        },
        {
          "name": "delegation",
          "writable": true
        },
        {
          "name": "payer",
          "writable": true,
          "relations": [
            "delegation"
          ]
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "delegate",
      "docs": [
        "Gives a sub-agent key its own lane, with a cap deposited and reserved for it."
      ],
      "discriminator": [
        90,
        147,
        75,
        178,
        85,
        88,
        4,
        137
      ],
      "accounts": [
        {
          "name": "funder",
          "docs": [
            "Authorises the cap's deposit from its token account."
          ],
          "signer": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "payer",
          "docs": [
            "Fronts the Delegation's rent and gets it back at `close_delegation`:",
            "the funder itself, or a sponsor."
          ],
          "writable": true,
          "signer": true
        },
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "delegation",
          "docs": [
            "(see [`crate::init`] for why not by Anchor's `init`)."
          ],
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  100,
                  101,
                  108,
                  101,
                  103,
                  97,
                  116,
                  105,
                  111,
                  110
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              },
              {
                "kind": "arg",
                "path": "terms.delegate"
              }
            ]
          }
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "funderToken",
          "writable": true
        },
        {
          "name": "mint",
          "relations": [
            "channel"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "systemProgram",
          "address": "11111111111111111111111111111111"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": [
        {
          "name": "terms",
          "type": {
            "defined": {
              "name": "delegationTerms"
            }
          }
        }
      ]
    },
    {
      "name": "open",
      "docs": [
        "Creates the Channel and its Vault and deposits the first tokens."
      ],
      "discriminator": [
        228,
        220,
        155,
        71,
        199,
        189,
        60,
        45
      ],
      "accounts": [
        {
          "name": "funder",
          "docs": [
            "Authorises the deposit from its token account and is refunded it."
          ],
          "signer": true
        },
        {
          "name": "payer",
          "docs": [
            "Fronts both accounts' rent and gets it back at close: the funder",
            "itself (one signer), or a sponsor such as the service."
          ],
          "writable": true,
          "signer": true
        },
        {
          "name": "channel",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  99,
                  104,
                  97,
                  110,
                  110,
                  101,
                  108
                ]
              },
              {
                "kind": "account",
                "path": "funder"
              },
              {
                "kind": "arg",
                "path": "args.recipient"
              },
              {
                "kind": "arg",
                "path": "args.nonce"
              }
            ]
          }
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "funderToken",
          "writable": true
        },
        {
          "name": "mint"
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "systemProgram",
          "address": "11111111111111111111111111111111"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": [
        {
          "name": "args",
          "type": {
            "defined": {
              "name": "openArgs"
            }
          }
        }
      ]
    },
    {
      "name": "refund",
      "docs": [
        "Refunds the vault to the funder and closes both accounts once the grace period is over."
      ],
      "discriminator": [
        2,
        96,
        183,
        251,
        63,
        208,
        46,
        46
      ],
      "accounts": [
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "payer",
          "docs": [
            "accounts' rent. The tokens go to the funder's token account."
          ],
          "writable": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "funderToken",
          "docs": [
            "handler when the vault has anything to refund."
          ],
          "writable": true
        },
        {
          "name": "mint",
          "docs": [
            "closed; read by the handler ([`LiveMint::read`])."
          ],
          "relations": [
            "channel"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "requestClose",
      "docs": [
        "Starts the grace period after which the funder may take its refund."
      ],
      "discriminator": [
        82,
        168,
        167,
        86,
        14,
        15,
        199,
        180
      ],
      "accounts": [
        {
          "name": "funder",
          "signer": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "revoke",
      "docs": [
        "Starts a delegation's grace period; its unspent cap is freed after it."
      ],
      "discriminator": [
        170,
        23,
        31,
        34,
        133,
        173,
        93,
        242
      ],
      "accounts": [
        {
          "name": "funder",
          "signer": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "channel",
          "relations": [
            "delegation"
          ]
        },
        {
          "name": "delegation",
          "writable": true
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "settle",
      "docs": [
        "Pays the recipient what the voucher in the preceding Ed25519SigVerify",
        "instruction adds to what was already settled."
      ],
      "discriminator": [
        175,
        42,
        185,
        87,
        144,
        131,
        102,
        212
      ],
      "accounts": [
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "delegation",
          "docs": [
            "The delegate's lane when the voucher is a delegate's; absent for the",
            "funder's own lane."
          ],
          "writable": true,
          "optional": true
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "recipientToken",
          "writable": true
        },
        {
          "name": "mint",
          "relations": [
            "channel"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "instructions",
          "address": "Sysvar1nstructions1111111111111111111111111"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "settleInto",
      "docs": [
        "Settles an upstream voucher straight into a downstream channel that",
        "the upstream recipient funds (agent supply chains)."
      ],
      "discriminator": [
        189,
        217,
        131,
        125,
        201,
        196,
        30,
        184
      ],
      "accounts": [
        {
          "name": "recipient",
          "docs": [
            "The upstream channel's recipient, which funds the downstream channel."
          ],
          "signer": true,
          "relations": [
            "upstream"
          ]
        },
        {
          "name": "upstream",
          "writable": true
        },
        {
          "name": "upstreamDelegation",
          "docs": [
            "The upstream delegate's lane when the voucher is a delegate's."
          ],
          "writable": true,
          "optional": true
        },
        {
          "name": "upstreamVault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "upstream"
              }
            ]
          }
        },
        {
          "name": "downstream",
          "writable": true
        },
        {
          "name": "downstreamVault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "downstream"
              }
            ]
          }
        },
        {
          "name": "mint",
          "relations": [
            "upstream"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "instructions",
          "address": "Sysvar1nstructions1111111111111111111111111"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "topUp",
      "docs": [
        "Adds to the deposit while the channel is open."
      ],
      "discriminator": [
        236,
        225,
        96,
        9,
        60,
        106,
        77,
        208
      ],
      "accounts": [
        {
          "name": "funder",
          "signer": true,
          "relations": [
            "channel"
          ]
        },
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "vault",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  97,
                  109,
                  112,
                  45,
                  118,
                  97,
                  117,
                  108,
                  116
                ]
              },
              {
                "kind": "account",
                "path": "channel"
              }
            ]
          }
        },
        {
          "name": "funderToken",
          "writable": true
        },
        {
          "name": "mint",
          "relations": [
            "channel"
          ]
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "eventAuthority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  95,
                  95,
                  101,
                  118,
                  101,
                  110,
                  116,
                  95,
                  97,
                  117,
                  116,
                  104,
                  111,
                  114,
                  105,
                  116,
                  121
                ]
              }
            ]
          }
        },
        {
          "name": "program",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": [
        {
          "name": "amount",
          "type": "u64"
        }
      ]
    }
  ],
  "accounts": [
    {
      "name": "channel",
      "discriminator": [
        49,
        159,
        99,
        106,
        220,
        87,
        219,
        88
      ]
    },
    {
      "name": "delegation",
      "discriminator": [
        237,
        90,
        140,
        159,
        124,
        255,
        243,
        80
      ]
    }
  ],
  "events": [
    {
      "name": "channelClosed",
      "discriminator": [
        119,
        198,
        23,
        254,
        216,
        124,
        84,
        16
      ]
    },
    {
      "name": "channelOpened",
      "discriminator": [
        253,
        213,
        255,
        96,
        31,
        188,
        47,
        170
      ]
    },
    {
      "name": "channelSettled",
      "discriminator": [
        111,
        173,
        122,
        136,
        157,
        140,
        206,
        6
      ]
    },
    {
      "name": "channelToppedUp",
      "discriminator": [
        54,
        225,
        177,
        32,
        80,
        12,
        60,
        115
      ]
    },
    {
      "name": "closeRequested",
      "discriminator": [
        136,
        120,
        170,
        78,
        168,
        236,
        47,
        118
      ]
    },
    {
      "name": "delegationClosed",
      "discriminator": [
        225,
        66,
        187,
        107,
        192,
        71,
        85,
        138
      ]
    },
    {
      "name": "delegationCreated",
      "discriminator": [
        20,
        93,
        12,
        34,
        227,
        63,
        100,
        136
      ]
    },
    {
      "name": "delegationRevoked",
      "discriminator": [
        59,
        158,
        142,
        49,
        164,
        116,
        220,
        8
      ]
    },
    {
      "name": "settledInto",
      "discriminator": [
        98,
        143,
        147,
        41,
        174,
        233,
        189,
        66
      ]
    }
  ],
  "errors": [
    {
      "code": 6000,
      "name": "invalidGracePeriod",
      "msg": "grace period is outside the allowed bounds"
    },
    {
      "code": 6001,
      "name": "invalidExpiry",
      "msg": "expiry must be 0 (never) or a future unix time"
    },
    {
      "code": 6002,
      "name": "zeroAmount",
      "msg": "amount must be greater than zero"
    },
    {
      "code": 6003,
      "name": "unsupportedMintExtension",
      "msg": "the mint has a Token-2022 extension that breaks channel accounting"
    },
    {
      "code": 6004,
      "name": "arithmeticOverflow",
      "msg": "arithmetic overflow"
    },
    {
      "code": 6005,
      "name": "channelClosing",
      "msg": "the channel is closing: a close was requested or it expired"
    },
    {
      "code": 6006,
      "name": "channelTooYoung",
      "msg": "a channel cannot be closed in the slot it was opened"
    },
    {
      "code": 6007,
      "name": "gracePeriodEnded",
      "msg": "the grace period has ended: vouchers can no longer be settled"
    },
    {
      "code": 6008,
      "name": "closeNotRequested",
      "msg": "no close was requested and the channel has not expired"
    },
    {
      "code": 6009,
      "name": "gracePeriodNotOver",
      "msg": "the grace period has not ended yet"
    },
    {
      "code": 6010,
      "name": "invalidInstructionsSysvar",
      "msg": "the account passed as the Instructions sysvar is not the sysvar"
    },
    {
      "code": 6011,
      "name": "missingEd25519Instruction",
      "msg": "no Ed25519SigVerify instruction immediately before this one"
    },
    {
      "code": 6012,
      "name": "ed25519SignatureCount",
      "msg": "the Ed25519SigVerify instruction must carry exactly one signature"
    },
    {
      "code": 6013,
      "name": "ed25519InstructionIndex",
      "msg": "the Ed25519SigVerify instruction must read its data from itself"
    },
    {
      "code": 6014,
      "name": "ed25519Offsets",
      "msg": "the Ed25519SigVerify instruction does not use the canonical offsets"
    },
    {
      "code": 6015,
      "name": "malformedVoucher",
      "msg": "the signed message is not a 68-byte AMP voucher"
    },
    {
      "code": 6016,
      "name": "wrongSigner",
      "msg": "the voucher is signed by a key that is not the lane's signer"
    },
    {
      "code": 6017,
      "name": "wrongLane",
      "msg": "the voucher names another lane"
    },
    {
      "code": 6018,
      "name": "wrongGeneration",
      "msg": "the voucher belongs to another incarnation of this lane"
    },
    {
      "code": 6019,
      "name": "voucherExpired",
      "msg": "the voucher has expired"
    },
    {
      "code": 6020,
      "name": "staleVoucher",
      "msg": "the voucher's cumulative amount is not above what was settled"
    },
    {
      "code": 6021,
      "name": "voucherExceedsDeposit",
      "msg": "the voucher's cumulative amount exceeds the deposit"
    },
    {
      "code": 6022,
      "name": "voucherExceedsCap",
      "msg": "the delegate voucher's cumulative amount exceeds the delegation's cap"
    },
    {
      "code": 6023,
      "name": "notFunder",
      "msg": "the account is not the channel's funder"
    },
    {
      "code": 6024,
      "name": "notRecipient",
      "msg": "the account is not the channel's recipient"
    },
    {
      "code": 6025,
      "name": "wrongRecipientTokenAccount",
      "msg": "the token account does not belong to the channel's recipient"
    },
    {
      "code": 6026,
      "name": "wrongFunderTokenAccount",
      "msg": "the token account does not belong to the channel's funder"
    },
    {
      "code": 6027,
      "name": "wrongMint",
      "msg": "the account is not of the channel's mint"
    },
    {
      "code": 6028,
      "name": "wrongTokenProgram",
      "msg": "the token program does not own the mint"
    },
    {
      "code": 6029,
      "name": "delegationsOutstanding",
      "msg": "close every delegation of the channel first"
    },
    {
      "code": 6030,
      "name": "wrongChannel",
      "msg": "the delegation belongs to another channel"
    },
    {
      "code": 6031,
      "name": "delegationRevoked",
      "msg": "the delegation is revoked or expired"
    },
    {
      "code": 6032,
      "name": "delegationNotClosable",
      "msg": "a delegation closes only after its grace period, or by the recipient"
    },
    {
      "code": 6033,
      "name": "selfChannel",
      "msg": "a funder cannot pay itself"
    },
    {
      "code": 6034,
      "name": "notDownstream",
      "msg": "the downstream channel must be funded by the upstream recipient"
    },
    {
      "code": 6035,
      "name": "supplyChainCycle",
      "msg": "settling into this channel would pay the upstream funder back"
    },
    {
      "code": 6036,
      "name": "accountExists",
      "msg": "the account already exists"
    },
    {
      "code": 6037,
      "name": "cpiGuardEnabled",
      "msg": "the funder's token account has the CPI Guard on: turn it off to deposit"
    },
    {
      "code": 6038,
      "name": "recipientCannotSign",
      "msg": "the recipient cannot sign the vouchers that pay it"
    },
    {
      "code": 6039,
      "name": "notPayer",
      "msg": "the account is not the one that fronted the rent"
    }
  ],
  "types": [
    {
      "name": "channel",
      "docs": [
        "A unidirectional payment channel from `funder` to `recipient` in one mint.",
        "",
        "Whether it is closing is derived from `close_requested_at` and `expires_at`",
        "rather than stored, so the two can never disagree."
      ],
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "funder",
            "type": "pubkey"
          },
          {
            "name": "recipient",
            "type": "pubkey"
          },
          {
            "name": "mint",
            "type": "pubkey"
          },
          {
            "name": "authorizedSigner",
            "docs": [
              "Key whose vouchers pay from this channel (the funder, or a hot key)."
            ],
            "type": "pubkey"
          },
          {
            "name": "nonce",
            "docs": [
              "Client-chosen seed; lets one funder hold many channels to one recipient."
            ],
            "type": "u64"
          },
          {
            "name": "generation",
            "docs": [
              "Slot of creation; part of every voucher, so earlier incarnations' die."
            ],
            "type": "u64"
          },
          {
            "name": "deposited",
            "docs": [
              "Total ever deposited."
            ],
            "type": "u64"
          },
          {
            "name": "settled",
            "docs": [
              "Total ever paid out through the funder's own lane (its best voucher settled)."
            ],
            "type": "u64"
          },
          {
            "name": "delegated",
            "docs": [
              "Part of `deposited` reserved for delegations: every live delegation's",
              "cap plus what closed delegations spent. The own lane pays at most",
              "`deposited - delegated`."
            ],
            "type": "u64"
          },
          {
            "name": "delegations",
            "docs": [
              "Live Delegation accounts; the channel closes only when none is left."
            ],
            "type": "u16"
          },
          {
            "name": "closeRequestedAt",
            "docs": [
              "Unix time of the funder's close request; 0 = none."
            ],
            "type": "i64"
          },
          {
            "name": "expiresAt",
            "docs": [
              "Unix time at which the channel counts as close-requested; 0 = never."
            ],
            "type": "i64"
          },
          {
            "name": "gracePeriod",
            "docs": [
              "Seconds between a close request (or expiry) and the funder's refund."
            ],
            "type": "u32"
          },
          {
            "name": "bump",
            "type": "u8"
          },
          {
            "name": "vaultBump",
            "type": "u8"
          },
          {
            "name": "payer",
            "docs": [
              "Who fronted both accounts' rent at `open` (the funder, or a sponsor",
              "such as the service); every closing path returns the rent to it.",
              "Last, so every earlier field keeps its offset."
            ],
            "type": "pubkey"
          }
        ]
      }
    },
    {
      "name": "channelClosed",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "settled",
            "docs": [
              "Total paid to the recipient over the channel's life."
            ],
            "type": "u64"
          },
          {
            "name": "refunded",
            "docs": [
              "Tokens returned to the funder (unspent deposit plus any donations)."
            ],
            "type": "u64"
          },
          {
            "name": "cooperative",
            "docs": [
              "True for the recipient's cooperative `close`, false for `refund`."
            ],
            "type": "bool"
          }
        ]
      }
    },
    {
      "name": "channelOpened",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "funder",
            "type": "pubkey"
          },
          {
            "name": "payer",
            "docs": [
              "Who fronted the rent (the funder unless sponsored)."
            ],
            "type": "pubkey"
          },
          {
            "name": "recipient",
            "type": "pubkey"
          },
          {
            "name": "mint",
            "type": "pubkey"
          },
          {
            "name": "authorizedSigner",
            "type": "pubkey"
          },
          {
            "name": "nonce",
            "type": "u64"
          },
          {
            "name": "generation",
            "type": "u64"
          },
          {
            "name": "deposit",
            "type": "u64"
          },
          {
            "name": "gracePeriod",
            "type": "u32"
          },
          {
            "name": "expiresAt",
            "type": "i64"
          }
        ]
      }
    },
    {
      "name": "channelSettled",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "lane",
            "docs": [
              "The address the voucher names (the channel itself for the funder's lane)."
            ],
            "type": "pubkey"
          },
          {
            "name": "amount",
            "type": "u64"
          },
          {
            "name": "settled",
            "docs": [
              "Cumulative amount settled on the lane after this settlement."
            ],
            "type": "u64"
          },
          {
            "name": "destination",
            "type": "pubkey"
          }
        ]
      }
    },
    {
      "name": "channelToppedUp",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "amount",
            "type": "u64"
          },
          {
            "name": "deposited",
            "type": "u64"
          }
        ]
      }
    },
    {
      "name": "closeRequested",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "requestedAt",
            "type": "i64"
          },
          {
            "name": "refundableAt",
            "docs": [
              "Vouchers stay settleable until this unix time; refunds open from it."
            ],
            "type": "i64"
          }
        ]
      }
    },
    {
      "name": "delegation",
      "docs": [
        "A sub-agent's own lane on a channel: its key signs vouchers naming this",
        "account, up to `cap`, which the funder deposited into the channel's vault",
        "when delegating (so every delegate voucher within the cap is fully backed)."
      ],
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "delegate",
            "docs": [
              "Key whose vouchers pay from this lane."
            ],
            "type": "pubkey"
          },
          {
            "name": "cap",
            "docs": [
              "The most this lane may ever pay."
            ],
            "type": "u64"
          },
          {
            "name": "settled",
            "docs": [
              "Cumulative amount paid out on this lane."
            ],
            "type": "u64"
          },
          {
            "name": "generation",
            "docs": [
              "Slot of creation; part of every delegate voucher."
            ],
            "type": "u64"
          },
          {
            "name": "expiresAt",
            "docs": [
              "Unix time at which the delegation counts as revoked; 0 = never."
            ],
            "type": "i64"
          },
          {
            "name": "revokeRequestedAt",
            "docs": [
              "Unix time of the funder's revocation; 0 = none."
            ],
            "type": "i64"
          },
          {
            "name": "bump",
            "type": "u8"
          },
          {
            "name": "payer",
            "docs": [
              "Who fronted the account's rent at `delegate`; `close_delegation`",
              "returns it there. Last, so every earlier field keeps its offset."
            ],
            "type": "pubkey"
          }
        ]
      }
    },
    {
      "name": "delegationClosed",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "delegation",
            "type": "pubkey"
          },
          {
            "name": "settled",
            "docs": [
              "Total the delegate's lane paid."
            ],
            "type": "u64"
          },
          {
            "name": "unspent",
            "docs": [
              "Cap returned to the channel's own lane."
            ],
            "type": "u64"
          }
        ]
      }
    },
    {
      "name": "delegationCreated",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "delegation",
            "type": "pubkey"
          },
          {
            "name": "delegate",
            "type": "pubkey"
          },
          {
            "name": "payer",
            "docs": [
              "Who fronted the rent (the funder unless sponsored)."
            ],
            "type": "pubkey"
          },
          {
            "name": "cap",
            "type": "u64"
          },
          {
            "name": "generation",
            "type": "u64"
          },
          {
            "name": "expiresAt",
            "type": "i64"
          }
        ]
      }
    },
    {
      "name": "delegationRevoked",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "channel",
            "type": "pubkey"
          },
          {
            "name": "delegation",
            "type": "pubkey"
          },
          {
            "name": "requestedAt",
            "type": "i64"
          },
          {
            "name": "refundableAt",
            "docs": [
              "Delegate vouchers stay settleable until this unix time."
            ],
            "type": "i64"
          }
        ]
      }
    },
    {
      "name": "delegationTerms",
      "docs": [
        "What the funder decides when delegating."
      ],
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "delegate",
            "type": "pubkey"
          },
          {
            "name": "cap",
            "docs": [
              "Tokens deposited and reserved for the delegate."
            ],
            "type": "u64"
          },
          {
            "name": "expiresAt",
            "docs": [
              "Unix time at which the delegation counts as revoked; 0 = never."
            ],
            "type": "i64"
          }
        ]
      }
    },
    {
      "name": "openArgs",
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "recipient",
            "type": "pubkey"
          },
          {
            "name": "nonce",
            "docs": [
              "Random per channel: a funder may hold many channels to one recipient."
            ],
            "type": "u64"
          },
          {
            "name": "deposit",
            "type": "u64"
          },
          {
            "name": "gracePeriod",
            "docs": [
              "Seconds between a close request and the refund (60 s to 30 days)."
            ],
            "type": "u32"
          },
          {
            "name": "expiresAt",
            "docs": [
              "Unix time at which the channel counts as close-requested; 0 = never."
            ],
            "type": "i64"
          },
          {
            "name": "authorizedSigner",
            "docs": [
              "Key that signs vouchers; `None` = the funder itself."
            ],
            "type": {
              "option": "pubkey"
            }
          }
        ]
      }
    },
    {
      "name": "settledInto",
      "docs": [
        "A supply-chain hop: an upstream voucher paid straight into a downstream",
        "channel funded by the upstream recipient."
      ],
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "upstream",
            "type": "pubkey"
          },
          {
            "name": "lane",
            "docs": [
              "The upstream lane the voucher named (the channel or one of its delegations)."
            ],
            "type": "pubkey"
          },
          {
            "name": "downstream",
            "type": "pubkey"
          },
          {
            "name": "amount",
            "type": "u64"
          },
          {
            "name": "settled",
            "docs": [
              "Cumulative amount settled on the upstream lane after this hop."
            ],
            "type": "u64"
          },
          {
            "name": "downstreamDeposited",
            "docs": [
              "The downstream channel's total deposit after this hop."
            ],
            "type": "u64"
          }
        ]
      }
    }
  ],
  "constants": [
    {
      "name": "channelSeed",
      "docs": [
        "Seed prefix of a Channel PDA: `[\"amp-channel\", funder, recipient, nonce_le]`."
      ],
      "type": "bytes",
      "value": "[97, 109, 112, 45, 99, 104, 97, 110, 110, 101, 108]"
    },
    {
      "name": "delegationSeed",
      "docs": [
        "Seed prefix of a delegated lane: `[\"amp-delegation\", channel, delegate]`."
      ],
      "type": "bytes",
      "value": "[97, 109, 112, 45, 100, 101, 108, 101, 103, 97, 116, 105, 111, 110]"
    },
    {
      "name": "maxGracePeriod",
      "docs": [
        "Longest grace period: a funder's refund can never be held back longer."
      ],
      "type": "u32",
      "value": "2592000"
    },
    {
      "name": "minGracePeriod",
      "docs": [
        "Shortest grace period a funder may choose: long enough for a recipient to",
        "land one settle transaction after seeing a close request."
      ],
      "type": "u32",
      "value": "60"
    },
    {
      "name": "vaultSeed",
      "docs": [
        "Seed prefix of a channel's token vault: `[\"amp-vault\", channel]`."
      ],
      "type": "bytes",
      "value": "[97, 109, 112, 45, 118, 97, 117, 108, 116]"
    }
  ]
};
