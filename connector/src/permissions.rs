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

/// The letters of a received share's mount point as its folder's listing
/// shows them, however it was read. Nextcloud adds delete to a movable
/// mount's own letters and delete and rename to them as its parent lists
/// them, so the same mount point says `SGD` to a `Depth: 0` request and
/// `SGDNV` in its folder's listing (and SEARCH gives the bare share bits).
/// Records must not change with the way they were read.
pub fn as_listed_mount_point(letters: &str) -> String {
    const ORDER: &str = "SRMGDNVWCK";
    let mut present: Vec<char> = letters.chars().collect();
    present.extend(['D', 'N', 'V']);
    let known: String = ORDER.chars().filter(|c| present.contains(c)).collect();
    // Letters this connector does not know are kept, after the known ones.
    let unknown: String = letters.chars().filter(|c| !ORDER.contains(*c)).collect();
    known + &unknown
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
    fn mount_points_read_the_way_their_folder_lists_them() {
        // Recorded from Nextcloud 32.0.1: Depth 0, Depth 1 of the parent, SEARCH.
        for (letters, listed) in [
            ("SGD", "SGDNV"),
            ("SGDNV", "SGDNV"),
            ("SG", "SGDNV"),
            ("SRGDNVCK", "SRGDNVCK"),
            ("SRGDNVW", "SRGDNVW"),
            ("SRGW", "SRGDNVW"),
        ] {
            assert_eq!(as_listed_mount_point(letters), listed, "{letters}");
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
