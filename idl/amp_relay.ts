/**
 * Program IDL in camelCase format in order to be used in JS/TS.
 *
 * Note that this is only a type helper and is not the actual IDL. The original
 * IDL can be found at `idl/amp_relay.json`.
 */
export type AmpRelay = {
  "address": "3tqbPscWbUGhp293ax4RjuNCoDU58cqCrZ9A9VEQVRrm",
  "metadata": {
    "name": "ampRelay",
    "version": "0.1.0",
    "spec": "0.1.0",
    "description": "Example: a supply-chain relay that calls amp-channel through CPI"
  },
  "instructions": [
    {
      "name": "distribute",
      "docs": [
        "Splits what reached the relay since the last split (however it",
        "arrived) and tops up the downstream channel with the share."
      ],
      "discriminator": [
        191,
        44,
        223,
        207,
        164,
        236,
        126,
        61
      ],
      "accounts": [
        {
          "name": "relay",
          "writable": true
        },
        {
          "name": "authority",
          "docs": [
            "upstream recipient and the downstream funder."
          ],
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121,
                  45,
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
              },
              {
                "kind": "account",
                "path": "relay"
              }
            ]
          }
        },
        {
          "name": "authorityToken",
          "writable": true
        },
        {
          "name": "downstream",
          "writable": true
        },
        {
          "name": "downstreamVault",
          "writable": true
        },
        {
          "name": "mint"
        },
        {
          "name": "tokenProgram"
        },
        {
          "name": "ampEventAuthority"
        },
        {
          "name": "ampProgram",
          "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
        }
      ],
      "args": []
    },
    {
      "name": "forward",
      "docs": [
        "Settles the upstream voucher in the preceding Ed25519SigVerify",
        "instruction to the relay, then splits as `distribute` does."
      ],
      "discriminator": [
        45,
        165,
        201,
        116,
        206,
        225,
        241,
        18
      ],
      "accounts": [
        {
          "name": "upstream",
          "writable": true
        },
        {
          "name": "upstreamVault",
          "writable": true
        },
        {
          "name": "instructions"
        },
        {
          "name": "distribute",
          "accounts": [
            {
              "name": "relay",
              "writable": true
            },
            {
              "name": "authority",
              "docs": [
                "upstream recipient and the downstream funder."
              ],
              "pda": {
                "seeds": [
                  {
                    "kind": "const",
                    "value": [
                      114,
                      101,
                      108,
                      97,
                      121,
                      45,
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
                  },
                  {
                    "kind": "account",
                    "path": "relay"
                  }
                ]
              }
            },
            {
              "name": "authorityToken",
              "writable": true
            },
            {
              "name": "downstream",
              "writable": true
            },
            {
              "name": "downstreamVault",
              "writable": true
            },
            {
              "name": "mint"
            },
            {
              "name": "tokenProgram"
            },
            {
              "name": "ampEventAuthority"
            },
            {
              "name": "ampProgram",
              "address": "DtxJzy2Vhg9X1Pv5R4fbNE1CdHPnkQtoFUHGdcG7EpfX"
            }
          ]
        }
      ],
      "args": []
    },
    {
      "name": "initRelay",
      "docs": [
        "Creates a relay that forwards `share_bps` of what it earns."
      ],
      "discriminator": [
        195,
        179,
        243,
        65,
        250,
        99,
        188,
        107
      ],
      "accounts": [
        {
          "name": "operator",
          "writable": true,
          "signer": true
        },
        {
          "name": "relay",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121
                ]
              },
              {
                "kind": "account",
                "path": "operator"
              }
            ]
          }
        },
        {
          "name": "authority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121,
                  45,
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
              },
              {
                "kind": "account",
                "path": "relay"
              }
            ]
          }
        },
        {
          "name": "systemProgram",
          "address": "11111111111111111111111111111111"
        }
      ],
      "args": [
        {
          "name": "shareBps",
          "type": "u16"
        }
      ]
    },
    {
      "name": "openDownstream",
      "docs": [
        "Opens the downstream channel, funded by the relay's PDA."
      ],
      "discriminator": [
        208,
        16,
        81,
        170,
        50,
        193,
        217,
        252
      ],
      "accounts": [
        {
          "name": "operator",
          "signer": true,
          "relations": [
            "relay"
          ]
        },
        {
          "name": "relay",
          "writable": true
        },
        {
          "name": "authority",
          "writable": true,
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121,
                  45,
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
              },
              {
                "kind": "account",
                "path": "relay"
              }
            ]
          }
        },
        {
          "name": "authorityToken",
          "writable": true
        },
        {
          "name": "channel",
          "writable": true
        },
        {
          "name": "vault",
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
          "name": "ampEventAuthority"
        },
        {
          "name": "ampProgram",
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
      "name": "sweep",
      "docs": [
        "Moves a stray token account of the relay's authority into the relay's own."
      ],
      "discriminator": [
        40,
        23,
        234,
        175,
        14,
        61,
        154,
        177
      ],
      "accounts": [
        {
          "name": "relay"
        },
        {
          "name": "authority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121,
                  45,
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
              },
              {
                "kind": "account",
                "path": "relay"
              }
            ]
          }
        },
        {
          "name": "authorityToken",
          "writable": true
        },
        {
          "name": "stray",
          "writable": true
        },
        {
          "name": "mint"
        },
        {
          "name": "tokenProgram"
        }
      ],
      "args": []
    },
    {
      "name": "withdraw",
      "docs": [
        "Pays the operator (part of) its share."
      ],
      "discriminator": [
        183,
        18,
        70,
        156,
        148,
        109,
        161,
        34
      ],
      "accounts": [
        {
          "name": "operator",
          "signer": true,
          "relations": [
            "relay"
          ]
        },
        {
          "name": "relay",
          "writable": true
        },
        {
          "name": "authority",
          "pda": {
            "seeds": [
              {
                "kind": "const",
                "value": [
                  114,
                  101,
                  108,
                  97,
                  121,
                  45,
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
              },
              {
                "kind": "account",
                "path": "relay"
              }
            ]
          }
        },
        {
          "name": "authorityToken",
          "writable": true
        },
        {
          "name": "destination",
          "docs": [
            "Any account of the mint the operator names."
          ],
          "writable": true
        },
        {
          "name": "mint"
        },
        {
          "name": "tokenProgram"
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
      "name": "relay",
      "discriminator": [
        68,
        174,
        62,
        107,
        120,
        176,
        134,
        128
      ]
    }
  ],
  "errors": [
    {
      "code": 6000,
      "name": "invalidShare",
      "msg": "the share must be at most 10,000 basis points"
    },
    {
      "code": 6001,
      "name": "downstreamExists",
      "msg": "the relay already has a downstream channel"
    },
    {
      "code": 6002,
      "name": "wrongDownstream",
      "msg": "this is not the relay's downstream channel"
    },
    {
      "code": 6003,
      "name": "arithmeticOverflow",
      "msg": "arithmetic overflow"
    },
    {
      "code": 6004,
      "name": "noDownstream",
      "msg": "the relay has no downstream channel yet"
    },
    {
      "code": 6005,
      "name": "wrongTokenAccount",
      "msg": "this is not the relay's token account"
    },
    {
      "code": 6006,
      "name": "insufficientOperatorShare",
      "msg": "the amount exceeds the operator's share"
    }
  ],
  "types": [
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
      "name": "relay",
      "docs": [
        "A relay's terms and its books. The relay's token account holds the",
        "operator's share (`operator_share`) plus whatever arrived since the last",
        "split; every split forwards `share_bps` of the arrivals downstream and",
        "credits the rest to the operator, so the books never depend on how the",
        "tokens arrived (through `forward`, a direct `settle`, a refund, a gift)."
      ],
      "type": {
        "kind": "struct",
        "fields": [
          {
            "name": "operator",
            "type": "pubkey"
          },
          {
            "name": "downstream",
            "docs": [
              "The downstream channel (default until `open_downstream`)."
            ],
            "type": "pubkey"
          },
          {
            "name": "tokenAccount",
            "docs": [
              "The authority's token account that receives and funds (set by `open_downstream`)."
            ],
            "type": "pubkey"
          },
          {
            "name": "shareBps",
            "docs": [
              "Share of each arrival forwarded downstream."
            ],
            "type": "u16"
          },
          {
            "name": "operatorShare",
            "docs": [
              "Tokens in `token_account` that belong to the operator."
            ],
            "type": "u64"
          },
          {
            "name": "bump",
            "type": "u8"
          },
          {
            "name": "authorityBump",
            "type": "u8"
          }
        ]
      }
    }
  ]
};
