//! Recordable media and their real capacities, in 2048-byte sectors as the drives report them.

/// Bytes in one data sector of CD, DVD and BD media.
pub const SECTOR: u64 = 2048;

/// A recordable medium the appliance can burn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Medium {
    /// Code used in the configuration and the catalog (`bd-r`, `dvd+r-dl`…).
    pub code: &'static str,
    /// Name shown to people.
    pub name: &'static str,
    /// Capacity of a blank, unformatted disc in sectors: the "free blocks" a drive reports.
    pub sectors: u64,
}

impl Medium {
    pub fn capacity_bytes(&self) -> u64 {
        self.sectors * SECTOR
    }
}

/// Every medium we know, with the sector counts drives report for blank discs (ECMA-267/ECMA-349
/// for DVD, the BD-R format books for BD; M-DISC media have the same geometry as their kin).
pub const MEDIA: &[Medium] = &[
    Medium {
        code: "cd-r",
        name: "CD-R 700MB",
        sectors: 359_848,
    },
    Medium {
        code: "dvd-r",
        name: "DVD-R 4.7GB",
        sectors: 2_298_496,
    },
    Medium {
        code: "dvd+r",
        name: "DVD+R 4.7GB",
        sectors: 2_295_104,
    },
    Medium {
        code: "dvd-r-dl",
        name: "DVD-R DL 8.5GB",
        sectors: 4_171_712,
    },
    Medium {
        code: "dvd+r-dl",
        name: "DVD+R DL 8.5GB",
        sectors: 4_173_824,
    },
    Medium {
        code: "bd-r",
        name: "BD-R 25GB",
        sectors: 12_219_392,
    },
    Medium {
        code: "bd-r-dl",
        name: "BD-R DL 50GB",
        sectors: 24_438_784,
    },
    Medium {
        code: "bdxl-100",
        name: "BDXL 100GB",
        sectors: 48_878_592,
    },
    Medium {
        code: "bdxl-128",
        name: "BDXL 128GB",
        sectors: 62_500_864,
    },
    Medium {
        code: "m-disc-dvd",
        name: "M-DISC DVD 4.7GB",
        sectors: 2_295_104,
    },
    Medium {
        code: "m-disc-bd",
        name: "M-DISC BD 25GB",
        sectors: 12_219_392,
    },
    Medium {
        code: "m-disc-bd-100",
        name: "M-DISC BDXL 100GB",
        sectors: 48_878_592,
    },
];

/// Looks a medium up by its code; `None` for an unknown code.
pub fn medium(code: &str) -> Option<Medium> {
    MEDIA.iter().copied().find(|m| m.code == code)
}

/// The list of codes, for error messages.
pub fn codes() -> String {
    MEDIA.iter().map(|m| m.code).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_capacities_match_the_format_books() {
        assert_eq!(medium("bd-r").unwrap().capacity_bytes(), 25_025_314_816);
        assert_eq!(medium("dvd+r").unwrap().capacity_bytes(), 4_700_372_992);
        assert_eq!(
            medium("bdxl-128").unwrap().capacity_bytes(),
            128_001_769_472
        );
        assert!(medium("floppy").is_none());
    }
}
