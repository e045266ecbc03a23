//! The reader simulator on a pseudo-terminal, driven through the real serial reader: the same
//! path the agent takes to a USB-serial reader, with the faults injected at the simulator.

use std::time::Duration;

use witness_drivers::idcard::serial::SerialPort;
use witness_drivers::idcard::simulator::{SimCard, Simulator};
use witness_drivers::idcard::{IdCardReader, Poll, SerialReader};

fn open(simulator: &Simulator) -> SerialReader<SerialPort> {
    let port =
        SerialPort::open(simulator.path(), 115_200).unwrap_or_else(|e| panic!("open pty: {e}"));
    SerialReader::new(port, Duration::from_millis(200))
}

fn outcome(reader: &mut SerialReader<SerialPort>) -> String {
    match reader.poll() {
        Ok(Poll::NoCard) => "no card".into(),
        Ok(Poll::Card(card)) => format!("card {}", card.text.name),
        Ok(Poll::Unreadable(e)) => format!("unreadable: {e}"),
        Err(e) => format!("reader fault: {e}"),
    }
}

#[test]
fn the_simulator_plays_a_reader_with_its_faults() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut simulator =
        Simulator::start(&dir.path().join("reader")).unwrap_or_else(|e| panic!("start: {e}"));
    let mut reader = open(&simulator);
    reader
        .sam_status()
        .unwrap_or_else(|e| panic!("sam status: {e}"));
    assert_eq!(outcome(&mut reader), "no card");

    let card = SimCard::new("李娜", "41022519850202202X", "20351231");
    simulator.present(card.clone());
    assert_eq!(outcome(&mut reader), "card 李娜");
    assert_eq!(
        outcome(&mut reader),
        "no card",
        "a card is read once per placement"
    );
    assert_eq!(simulator.reads(), 1);

    simulator.garbage_before_answers(9);
    simulator.present(card.clone());
    assert_eq!(outcome(&mut reader), "card 李娜");
    simulator.garbage_before_answers(0);

    simulator.present(card.clone());
    simulator.remove_mid_read();
    assert!(outcome(&mut reader).starts_with("unreadable: answer truncated"));

    simulator.present(card.clone());
    simulator.corrupt_next_answer();
    assert!(
        outcome(&mut reader).starts_with("reader fault: answer with a bad checksum"),
        "a corrupted find-card answer"
    );
    assert_eq!(
        outcome(&mut reader),
        "card 李娜",
        "the next poll reads the card"
    );

    simulator.set_mute(true);
    assert_eq!(
        outcome(&mut reader),
        "reader fault: reader did not answer within 200ms"
    );
    simulator.set_mute(false);
    assert_eq!(
        outcome(&mut reader),
        "no card",
        "a reader that comes back is used again"
    );

    simulator.unplug();
    assert!(
        outcome(&mut reader).starts_with("reader fault: reader I/O"),
        "unplugged"
    );
    simulator.replug().unwrap_or_else(|e| panic!("replug: {e}"));
    let mut reader = open(&simulator);
    simulator.present(card);
    assert_eq!(
        outcome(&mut reader),
        "card 李娜",
        "plugged back in, the same path works"
    );
}
