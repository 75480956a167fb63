//! Nextcloud's permission letters and bits, mapped to the sink's levels.

use crate::model::PermissionLevel;

pub const READ: u32 = 1;
pub const UPDATE: u32 = 2;
pub const CREATE: u32 = 4;
pub const DELETE: u32 = 8;
pub const SHARE: u32 = 16;
pub const ALL: u32 = READ | UPDATE | CREATE | DELETE | SHARE;

/// The bits behind `oc:permissions` letters (`lib/public/Files/DavUtil.php`).
/// `S` and `M` say where the item is mounted, not what may be done.
pub fn bits_of(letters: &str) -> u32 {
    letters.chars().fold(0, |bits, c| {
        bits | match c {
            'G' => READ,
            'N' | 'V' | 'W' => UPDATE,
            'C' | 'K' => CREATE,
            'D' => DELETE,
            'R' => SHARE,
            _ => 0,
        }
    })
}

/// The syncing user's level on an item. What is the user's own (no `S`) is
/// theirs. What reaches them through a share belongs to someone else, so even
/// with every bit it is at most write; below that it maps by the seed's rule.
pub fn level_of(letters: &str, share_bits: Option<u32>) -> PermissionLevel {
    if !letters.contains('S') {
        return PermissionLevel::Owner;
    }
    match level_of_bits(share_bits.unwrap_or_else(|| bits_of(letters))) {
        PermissionLevel::Owner => PermissionLevel::Write,
        level => level,
    }
}

/// The seed's mapping of share permission bits.
pub fn level_of_bits(bits: u32) -> PermissionLevel {
    if bits & ALL == ALL {
        PermissionLevel::Owner
    } else if bits & (UPDATE | DELETE) != 0 {
        PermissionLevel::Write
    } else {
        PermissionLevel::Read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PermissionLevel::*;

    #[test]
    fn letter_combinations_seen_on_nextcloud_32() {
        let table = [
            ("RGDNVW", Owner),   // own file
            ("RGDNVCK", Owner),  // own folder
            ("SRGDNVW", Write),  // file shared with edit rights: no create bit, so not all
            ("SRGDNVCK", Write), // folder shared with every right: still someone else's
            ("SGDNV", Write),    // inside a share that allows delete and rename (a mount
            //                      point shows these whatever it grants: entry::own_level)
            ("SG", Read),       // read-only share
            ("MRGDNVW", Owner), // own external storage
            ("", Owner),        // no letters: nothing says it is shared
        ];
        for (letters, level) in table {
            assert_eq!(level_of(letters, None), level, "{letters}");
        }
    }

    #[test]
    fn share_bits_win_over_letters() {
        assert_eq!(level_of("SRGDNVCK", Some(READ)), Read);
        assert_eq!(level_of("SG", Some(ALL)), Write);
        assert_eq!(
            level_of("RGDNVW", Some(READ)),
            Owner,
            "own items stay owned"
        );
    }

    #[test]
    fn bits_follow_dav_util() {
        assert_eq!(bits_of("RGDNVCK"), ALL);
        assert_eq!(bits_of("SRGDNVW"), READ | UPDATE | DELETE | SHARE);
        assert_eq!(bits_of("SG"), READ);
        assert_eq!(bits_of("M"), 0);
    }

    #[test]
    fn seed_rule_on_bits() {
        assert_eq!(level_of_bits(31), Owner);
        assert_eq!(level_of_bits(READ | UPDATE), Write);
        assert_eq!(level_of_bits(READ | DELETE), Write);
        assert_eq!(level_of_bits(READ | SHARE), Read);
        assert_eq!(level_of_bits(READ | CREATE), Read);
    }
}
