//! THREATS.md checklist 7: many seals of the same input never repeat a salt, a derived key (seen
//! through its commitment) or an ephemeral share.

mod common;

use std::collections::HashSet;

use common::*;
use modelseal::format::Stanza;
use modelseal::seal::{self, Recipient};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn repeated_seals_never_repeat_key_material(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let w = World::new();
        let input = w.write("m.bin", &data);
        let inputs = seal::collect_inputs(&[input], &Default::default()).unwrap();
        let rp = w.reader.public();
        let ci = shared_key();
        let (mut salts, mut commitments, mut shares) = (HashSet::new(), HashSet::new(), HashSet::new());
        for _ in 0..25 {
            let opts = w.options(vec![Recipient::PublicKey(&rp), Recipient::SharedKey(&ci)], Default::default());
            let mut out = std::io::Cursor::new(Vec::new());
            let s = seal::seal_to_writer(&inputs, &opts, &mut out).unwrap();
            prop_assert!(salts.insert(s.header.salt));
            prop_assert!(commitments.insert(s.header.commitment));
            for st in &s.header.recipients {
                let fresh = match st {
                    Stanza::X25519 { ephemeral, .. } => shares.insert(*ephemeral),
                    Stanza::SharedKey { salt, .. } => shares.insert(*salt),
                };
                prop_assert!(fresh);
            }
            // The salt is not a counter or a constant: it has many distinct bytes.
            prop_assert!(s.header.salt.iter().collect::<HashSet<_>>().len() > 8);
        }
    }
}
